package io.jvhost.virtio;

/**
 * virtio-blk wire layouts (VIRTIO 1.2, section 5.2), little-endian: read and write them with
 * {@link LittleEndian}.
 *
 * <pre>
 * struct virtio_blk_req header (5.2.6), 16 bytes:   0 le32 type  4 le32 reserved(ioprio)  8 le64 sector
 * ... data ... then one status byte (device-writable): 0 OK, 1 IOERR, 2 UNSUPP
 * discard / write-zeroes segment (5.2.6), 16 bytes:  0 le64 sector  8 le32 num_sectors  12 le32 flags (bit 0 unmap)
 *
 * struct virtio_blk_config (5.2.4):
 *   0 le64 capacity (512-byte sectors)   8 le32 size_max   12 le32 seg_max
 *  16 geometry {le16 cylinders; u8 heads; u8 sectors}        20 le32 blk_size
 *  24 topology {u8 physical_block_exp; u8 alignment_offset; le16 min_io_size; le32 opt_io_size}
 *  32 u8 writeback   33 u8 unused0   34 le16 num_queues
 *  36 le32 max_discard_sectors   40 le32 max_discard_seg   44 le32 discard_sector_alignment
 *  48 le32 max_write_zeroes_sectors   52 le32 max_write_zeroes_seg   56 u8 write_zeroes_may_unmap  57 u8 unused1[3]
 *  60 le32 max_secure_erase_sectors  64 le32 max_secure_erase_seg  68 le32 secure_erase_sector_alignment
 * </pre>
 */
public final class BlkLayout {
    private BlkLayout() {}

    public static final int SECTOR_SIZE = 512;
    public static final int HEADER_SIZE = 16;
    public static final int HDR_TYPE = 0;
    public static final int HDR_IOPRIO = 4;
    public static final int HDR_SECTOR = 8;
    public static final int SEGMENT_SIZE = 16;
    public static final int SEG_SECTOR = 0;
    public static final int SEG_NUM_SECTORS = 8;
    public static final int SEG_FLAGS = 12;
    public static final int ID_BYTES = 20;

    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_GET_LIFETIME = 10;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;
    public static final int T_SECURE_ERASE = 14;

    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;

    public static final int WZ_FLAG_UNMAP = 1;

    // Feature bits (5.2.3).
    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_GEOMETRY = 4;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_TOPOLOGY = 10;
    public static final int F_CONFIG_WCE = 11;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;

    // Config offsets.
    public static final int C_CAPACITY = 0;
    public static final int C_SIZE_MAX = 8;
    public static final int C_SEG_MAX = 12;
    public static final int C_BLK_SIZE = 20;
    public static final int C_PHYS_BLOCK_EXP = 24;
    public static final int C_ALIGNMENT_OFFSET = 25;
    public static final int C_MIN_IO_SIZE = 26;
    public static final int C_OPT_IO_SIZE = 28;
    public static final int C_WRITEBACK = 32;
    public static final int C_NUM_QUEUES = 34;
    public static final int C_MAX_DISCARD_SECTORS = 36;
    public static final int C_MAX_DISCARD_SEG = 40;
    public static final int C_DISCARD_SECTOR_ALIGNMENT = 44;
    public static final int C_MAX_WRITE_ZEROES_SECTORS = 48;
    public static final int C_MAX_WRITE_ZEROES_SEG = 52;
    public static final int C_WRITE_ZEROES_MAY_UNMAP = 56;
    /** Size of the config up to and including write_zeroes_may_unmap's padding (what Linux reads). */
    public static final int CONFIG_SIZE = 60;
}
