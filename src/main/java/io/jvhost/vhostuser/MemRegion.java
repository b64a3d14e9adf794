package io.jvhost.vhostuser;

/**
 * A memory region description (vhost-user.rst "Memory region description"): guest-physical
 * address, size, front-end virtual address and offset into the fd to map. {@link #fd()} is the
 * fd that came with the message for this region (-1 for REM_MEM_REG without one); it stays owned
 * by the message and is closed after the request, so map it during the call.
 */
public record MemRegion(long guestAddr, long size, long userAddr, long mmapOffset, int fd) {
    @Override
    public String toString() {
        return "gpa=0x" + Long.toHexString(guestAddr) + " size=0x" + Long.toHexString(size) + " uva=0x" + Long.toHexString(userAddr)
                + " offset=0x" + Long.toHexString(mmapOffset);
    }
}
