package io.jvhost.vhostuser;

import java.util.List;

/** SET_MEM_TABLE's payload (vhost-user.rst "Multiple Memory regions description"): 0..8 regions, each with its fd. */
public record MemTable(List<MemRegion> regions) {
    public MemTable {
        regions = List.copyOf(regions);
    }
}
