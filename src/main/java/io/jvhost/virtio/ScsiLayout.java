package io.jvhost.virtio;

/**
 * virtio-scsi wire layouts (VIRTIO 1.2, section 5.6), little-endian.
 *
 * <pre>
 * Queues: 0 controlq, 1 eventq, 2.. request queues.
 *
 * struct virtio_scsi_config (5.6.4), 36 bytes:
 *   0 le32 num_queues   4 le32 seg_max   8 le32 max_sectors   12 le32 cmd_per_lun
 *  16 le32 event_info_size  20 le32 sense_size  24 le32 cdb_size
 *  28 le16 max_channel  30 le16 max_target  32 le32 max_lun
 *
 * virtio_scsi_req_cmd (5.6.6.1), device-readable part:   device-writable part (virtio_scsi_resp_cmd):
 *   0 u8 lun[8]  8 le64 id  16 u8 task_attr               0 le32 sense_len  4 le32 residual
 *  17 u8 prio  18 u8 crn  19 u8 cdb[cdb_size]             8 le16 status_qualifier  10 u8 status
 *   then data-out                                         11 u8 response  12 u8 sense[sense_size]  then data-in
 *
 * lun[8]: byte 0 = 1, byte 1 = target, bytes 2-3 = LUN (flat space, 0x4000 | lun), bytes 4-7 = 0.
 *
 * controlq (5.6.6.2): le32 type at 0.
 *   TMF:  0 le32 type  4 le32 subtype  8 u8 lun[8]  16 le64 id       resp: 0 u8 response
 *   AN:   0 le32 type  4 u8 lun[8]  12 le32 event_requested           resp: 0 le32 event_actual  4 u8 response
 * eventq (5.6.6.3): virtio_scsi_event, 16 bytes: 0 le32 event  4 u8 lun[8]  12 le32 reason
 * </pre>
 */
public final class ScsiLayout {
    private ScsiLayout() {}

    public static final int CONTROL_QUEUE = 0;
    public static final int EVENT_QUEUE = 1;
    public static final int FIRST_REQUEST_QUEUE = 2;

    public static final int F_INOUT = 0;
    public static final int F_HOTPLUG = 1;
    public static final int F_CHANGE = 2;
    public static final int F_T10_PI = 3;

    public static final int C_NUM_QUEUES = 0;
    public static final int C_SEG_MAX = 4;
    public static final int C_MAX_SECTORS = 8;
    public static final int C_CMD_PER_LUN = 12;
    public static final int C_EVENT_INFO_SIZE = 16;
    public static final int C_SENSE_SIZE = 20;
    public static final int C_CDB_SIZE = 24;
    public static final int C_MAX_CHANNEL = 28;
    public static final int C_MAX_TARGET = 30;
    public static final int C_MAX_LUN = 32;
    public static final int CONFIG_SIZE = 36;

    public static final int DEFAULT_SENSE_SIZE = 96;
    public static final int DEFAULT_CDB_SIZE = 32;

    public static final int REQ_LUN = 0;
    public static final int REQ_ID = 8;
    public static final int REQ_TASK_ATTR = 16;
    public static final int REQ_CDB = 19;
    public static final int REQ_HEADER = 19;

    public static final int RESP_SENSE_LEN = 0;
    public static final int RESP_RESIDUAL = 4;
    public static final int RESP_STATUS_QUALIFIER = 8;
    public static final int RESP_STATUS = 10;
    public static final int RESP_RESPONSE = 11;
    public static final int RESP_SENSE = 12;
    public static final int RESP_HEADER = 12;

    // Response codes (5.6.6.1.1).
    public static final int S_OK = 0;
    public static final int S_OVERRUN = 1;
    public static final int S_ABORTED = 2;
    public static final int S_BAD_TARGET = 3;
    public static final int S_RESET = 4;
    public static final int S_BUSY = 5;
    public static final int S_TRANSPORT_FAILURE = 6;
    public static final int S_TARGET_FAILURE = 7;
    public static final int S_NEXUS_FAILURE = 8;
    public static final int S_FAILURE = 9;
    public static final int S_FUNCTION_SUCCEEDED = 10;
    public static final int S_FUNCTION_REJECTED = 11;
    public static final int S_INCORRECT_LUN = 12;

    // controlq.
    public static final int T_TMF = 0;
    public static final int T_AN_QUERY = 1;
    public static final int T_AN_SUBSCRIBE = 2;
    public static final int TMF_REQ_SIZE = 24;
    public static final int TMF_RESP_SIZE = 1;
    public static final int AN_REQ_SIZE = 16;
    public static final int AN_RESP_SIZE = 5;

    // eventq.
    public static final int EVENT_SIZE = 16;
    public static final int T_NO_EVENT = 0;
    public static final int T_TRANSPORT_RESET = 1;
    public static final int T_ASYNC_NOTIFY = 2;
    public static final int T_PARAM_CHANGE = 3;
    public static final int T_EVENTS_MISSED = 0x80000000;
    public static final int EVT_RESET_HARD = 0;
    public static final int EVT_RESET_RESCAN = 1;
    public static final int EVT_RESET_REMOVED = 2;

    /** Target id addressed by a lun[8] field, or -1 when the field is not a single-level LUN we serve. */
    public static int target(byte b0, byte b1) {
        return b0 == 1 ? (b1 & 0xff) : -1;
    }

    /** LUN number from bytes 2-3 of the lun[8] field (flat space addressing, as QEMU decodes it). */
    public static int lun(byte b2, byte b3) {
        return (((b2 & 0xff) << 8) | (b3 & 0xff)) & 0x3fff;
    }
}
