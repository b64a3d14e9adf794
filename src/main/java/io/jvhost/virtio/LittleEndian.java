package io.jvhost.virtio;

import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The value layouts for everything virtio puts in guest memory: rings, descriptors, device
 * headers and config space are little-endian whatever the host (VIRTIO 1.2, 1.4 "Structure
 * Specifications": le16/le32/le64). Defined once so no access falls back to native order.
 *
 * <p>The {@code U*} layouts are unaligned (a guest may place a header at any byte); the
 * {@code ALIGNED_U16} handle is for the ring indices that need acquire/release access, which
 * only aligned layouts support (2.7: available and used rings are 2- and 4-byte aligned).
 */
public final class LittleEndian {
    private LittleEndian() {}

    public static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Aligned le16 for {@code avail->idx} / {@code used->idx} (acquire/release access). */
    public static final VarHandle ALIGNED_U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
}
