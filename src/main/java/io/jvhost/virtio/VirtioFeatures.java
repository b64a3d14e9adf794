package io.jvhost.virtio;

/** Device-independent feature bits (VIRTIO 1.2, section 6) and vhost-user's protocol-feature bit. */
public final class VirtioFeatures {
    private VirtioFeatures() {}

    /** VHOST_F_LOG_ALL (vhost-user.rst "Migration"): the back-end logs every guest page it writes. */
    public static final int LOG_ALL = 26;
    public static final int RING_INDIRECT_DESC = 28;
    public static final int RING_EVENT_IDX = 29;
    /** VHOST_USER_F_PROTOCOL_FEATURES (vhost-user.rst), shares the virtio feature word. */
    public static final int VHOST_USER_PROTOCOL_FEATURES = 30;
    public static final int VERSION_1 = 32;
    public static final int ACCESS_PLATFORM = 33;
    public static final int RING_PACKED = 34;

    public static long bit(int b) {
        return 1L << b;
    }

    public static boolean has(long features, int b) {
        return (features & (1L << b)) != 0;
    }
}
