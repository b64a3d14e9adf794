package io.jvhost.virtio;

/**
 * Why a descriptor chain or a ring was rejected. Constant reasons so the data path builds no
 * strings; counted per queue.
 */
public enum ChainError {
    NONE("ok"),
    HEAD_OUT_OF_RANGE("head descriptor index >= queue size"),
    NEXT_OUT_OF_RANGE("next descriptor index >= table size"),
    LOOP("descriptor chain loops or is longer than its table"),
    /**
     * The chain, indirect table entries included, holds more descriptors than the queue size
     * (VIRTIO 1.2, 2.7.5.3.1 / 2.7.13.1) or than the device's advertised segment limit allows.
     */
    CHAIN_TOO_LONG("descriptor chain (indirect entries included) is longer than the queue size"),
    ADDRESS_OUT_OF_RANGE("buffer address outside guest memory"),
    TOO_MANY_BUFFERS("chain has more buffers than the device accepts"),
    READABLE_AFTER_WRITABLE("device-readable descriptor after a device-writable one"),
    INDIRECT_NOT_NEGOTIATED("indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC"),
    NESTED_INDIRECT("indirect descriptor inside an indirect table"),
    INDIRECT_WITH_NEXT("descriptor has both INDIRECT and NEXT"),
    BAD_INDIRECT_LENGTH("indirect table length is 0 or not a multiple of 16"),
    /** An indirect table has more entries than a whole chain may hold (see {@link #CHAIN_TOO_LONG}). */
    INDIRECT_TABLE_TOO_LONG("indirect table has more entries than the queue size"),
    /**
     * A well-formed chain the device refuses because it exceeds limits the device advertised
     * (virtio-blk seg_max / size_max, 5.2.4). Answered with an error status by the device,
     * counted with the chain errors.
     */
    EXCEEDS_DEVICE_LIMITS("request exceeds the advertised seg_max or size_max"),
    AVAIL_INDEX_JUMP("available index moved by more than the queue size"),
    DUPLICATE_HEAD("head is already in flight"),
    /**
     * An access to the ring or a buffer faulted (SIGBUS): the front-end truncated or shrank the
     * file behind a memory region it handed us. Nothing more is read from or written to it.
     */
    GUEST_MEMORY_FAULT("guest memory access faulted (the front-end truncated its memory)"),
    /** The queue's processing threw unexpectedly (a bug); the queue stops rather than the reactor. */
    INTERNAL_ERROR("internal error while processing the queue");

    public final String reason;

    ChainError(String reason) {
        this.reason = reason;
    }
}
