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

    /** SPDK's notification types for bdevs (lib/bdev/bdev.c). */
    public static final String NOTIFY_REGISTER = "bdev_register", NOTIFY_UNREGISTER = "bdev_unregister";
    /** How many notifications are kept; older ones are dropped (their ids are not reused). */
    static final int MAX_NOTIFICATIONS = 4096;

    /** One event for SPDK's {@code notify_get_notifications}: {@code ctx} is the bdev name. */
    public record Notification(long id, String type, String ctx) {}

    private final java.util.ArrayDeque<Notification> notifications = new java.util.ArrayDeque<>();
    private long nextNotificationId;

    private void notify(String type, String name) {
        if (notifications.size() == MAX_NOTIFICATIONS) notifications.removeFirst();
        notifications.addLast(new Notification(nextNotificationId++, type, name));
    }

    /** Notifications with {@code id >= from}, oldest first, at most {@code max} (0: all). */
    public synchronized List<Notification> notifications(long from, long max) {
        List<Notification> l = new ArrayList<>();
        for (Notification n : notifications) {
            if (n.id() < from) continue;
            if (max > 0 && l.size() >= max) break;
            l.add(n);
        }
        return l;
    }

    public synchronized void register(BlockDevice dev) {
        if (devices.containsKey(dev.name())) {
            dev.close();
            throw new BdevException(BdevException.Kind.EXISTS, "bdev '" + dev.name() + "' already exists");
        }
        devices.put(dev.name(), dev);
        notify(NOTIFY_REGISTER, dev.name());
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
        if (cur != null) {
            throw new BdevException(BdevException.Kind.IN_USE, "bdev '" + name + "' is in use by " + cur
                    + "; delete that controller (or remove its SCSI target) first");
        }
        devices.remove(name);
        d.ioStats().withdraw();
        d.close();
        notify(NOTIFY_UNREGISTER, name);
    }

    /**
     * Sets the capacity of an unclaimed bdev to {@code newNumBlocks} (SPDK's
     * {@code bdev_null_resize}, {@code bdev_aio_rescan}). A claimed one is refused: its users
     * (a controller and its guest) were told the old size, and jvhost cannot tell a connected
     * guest about a new capacity yet. Returns the old size in blocks.
     */
    public synchronized long resize(String name, long newNumBlocks) {
        BlockDevice d = get(name);
        String cur = claims.get(name);
        if (d.numBlocks() == newNumBlocks) return newNumBlocks;
        if (cur != null) {
            throw new BdevException(BdevException.Kind.IN_USE, "bdev '" + name + "' is in use by " + cur
                    + ": its capacity cannot change while claimed (jvhost does not notify a guest of a capacity change); "
                    + "delete the controller, resize, then create it again");
        }
        if (!(d instanceof AbstractBlockDevice a)) throw new BdevException(BdevException.Kind.INVALID, "bdev '" + name + "' cannot be resized");
        long old = a.numBlocks();
        a.resize(newNumBlocks);
        return old;
    }

    public synchronized void closeAll() {
        for (BlockDevice d : devices.values()) {
            d.ioStats().withdraw();
            d.close();
        }
        devices.clear();
        claims.clear();
    }
}
