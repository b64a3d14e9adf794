package io.jvhost.vhostuser;

/**
 * Wire constants of vhost-user (QEMU docs/interop/vhost-user.rst). All fields little-endian.
 *
 * <pre>
 * Header (12 bytes):  0 u32 request   4 u32 flags (bits 0-1 version = 1, bit 2 reply, bit 3 need_reply)   8 u32 size
 * vring state:        0 u32 index     4 u32 num
 * vring address:      0 u32 index     4 u32 flags   8 u64 desc   16 u64 used   24 u64 avail   32 u64 log
 * memory table:       0 u32 nregions  4 u32 padding 8 region[nregions]
 * memory region:      0 u64 guest_addr  8 u64 size  16 u64 user_addr  24 u64 mmap_offset
 * single region:      0 u64 padding   8 region
 * device config:      0 u32 offset    4 u32 size    8 u32 flags  12 u8 payload[size]
 * vring file (u64):   bits 0-7 index, bit 8 invalid fd (no fd attached)
 * log:               0 u64 mmap_size  8 u64 mmap_offset                       (fd: the log to map)
 * inflight:          0 u64 mmap_size  8 u64 mmap_offset  16 u16 num_queues  18 u16 queue_size  20 pad[4]
 * </pre>
 */
public final class VhostUserProtocol {
    private VhostUserProtocol() {}

    public static final int HEADER_SIZE = 12;
    public static final int VERSION = 0x1;
    public static final int FLAG_VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;
    /** Largest payload we accept; bigger sizes are a framing error. */
    public static final int MAX_PAYLOAD = 4096;

    public static final int VRING_STATE_SIZE = 8;
    public static final int VRING_ADDR_SIZE = 40;
    public static final int MEM_REGION_SIZE = 32;
    public static final int MEM_TABLE_HEADER = 8;
    /** Regions one SET_MEM_TABLE may carry (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MAX_TABLE_REGIONS = 8;
    public static final int CONFIG_HEADER = 12;
    public static final int LOG_SIZE = 16;
    /** The inflight description as QEMU, DPDK and libvhost-user lay it out (20 bytes of fields, padded to 24). */
    public static final int INFLIGHT_SIZE = 24;
    /** Largest config space request we answer (VHOST_USER_MAX_CONFIG_SIZE). */
    public static final int MAX_CONFIG_SIZE = 256;

    public static final long VRING_FILE_INDEX_MASK = 0xff;
    public static final long VRING_FILE_NOFD = 0x100;

    // Protocol feature bits.
    public static final int PF_MQ = 0;
    public static final int PF_LOG_SHMFD = 1;
    public static final int PF_RARP = 2;
    public static final int PF_REPLY_ACK = 3;
    public static final int PF_MTU = 4;
    public static final int PF_BACKEND_REQ = 5;
    public static final int PF_CROSS_ENDIAN = 6;
    public static final int PF_CRYPTO_SESSION = 7;
    public static final int PF_PAGEFAULT = 8;
    public static final int PF_CONFIG = 9;
    public static final int PF_BACKEND_SEND_FD = 10;
    public static final int PF_HOST_NOTIFIER = 11;
    public static final int PF_INFLIGHT_SHMFD = 12;
    public static final int PF_RESET_DEVICE = 13;
    public static final int PF_INBAND_NOTIFICATIONS = 14;
    public static final int PF_CONFIGURE_MEM_SLOTS = 15;
    public static final int PF_STATUS = 16;

    /** Memory slots offered under CONFIGURE_MEM_SLOTS (QEMU's limit for vhost-user is 509). */
    public static final int MAX_MEM_SLOTS = 509;

    public static final int VRING_ADDR_F_LOG = 1;
}
