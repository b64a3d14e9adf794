package io.jvhost.bdev;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Named block devices and who claims them. Control path only (synchronized); the data path
 * holds direct references and channels.
 */
public final class BdevRegistry {
    private final Map<String, BlockDevice> devices = new LinkedHashMap<>();
    private final Map<String, String> claims = new LinkedHashMap<>();

    public synchronized void register(BlockDevice dev) {
        if (devices.containsKey(dev.name())) {
            dev.close();
            throw new BdevException(BdevException.Kind.EXISTS, "bdev '" + dev.name() + "' already exists");
        }
        devices.put(dev.name(), dev);
    }

    public synchronized Optional<BlockDevice> find(String name) {
        return Optional.ofNullable(devices.get(name));
    }

    public synchronized BlockDevice get(String name) {
        BlockDevice d = devices.get(name);
        if (d == null) throw new BdevException(BdevException.Kind.NOT_FOUND, "bdev '" + name + "' does not exist");
        return d;
    }

    public synchronized List<BlockDevice> list() {
        return new ArrayList<>(devices.values());
    }

    /** Marks {@code name} as used by {@code owner}; a bdev has at most one owner. */
    public synchronized BlockDevice claim(String name, String owner) {
        BlockDevice d = get(name);
        String cur = claims.get(name);
        if (cur != null) throw new BdevException(BdevException.Kind.IN_USE, "bdev '" + name + "' is already in use by " + cur);
        claims.put(name, owner);
        return d;
    }

    public synchronized void release(String name, String owner) {
        claims.remove(name, owner);
    }

    public synchronized Optional<String> claimedBy(String name) {
        return Optional.ofNullable(claims.get(name));
    }

    /** Deletes an unclaimed bdev and closes it. */
    public synchronized void delete(String name) {
        BlockDevice d = get(name);
        String cur = claims.get(name);
        if (cur != null) throw new BdevException(BdevException.Kind.IN_USE, "bdev '" + name + "' is in use by " + cur);
        devices.remove(name);
        d.close();
    }

    public synchronized void closeAll() {
        for (BlockDevice d : devices.values()) d.close();
        devices.clear();
        claims.clear();
    }
}
