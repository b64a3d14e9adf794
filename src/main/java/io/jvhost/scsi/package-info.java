/**
 * The SCSI target layer (SPDK: lib/scsi), free of any transport: it knows CDBs, sense data and
 * task management, and nothing of virtio or vhost-user.
 *
 * <h2>Objects</h2>
 * <ul>
 *   <li>{@link io.jvhost.scsi.ScsiDevice}: up to eight {@link io.jvhost.scsi.ScsiTarget}s, looked up
 *       by id without locks; added and removed from control threads.</li>
 *   <li>{@link io.jvhost.scsi.ScsiTarget}: id 0-7, a name, LUN 0 ({@link io.jvhost.scsi.ScsiLun})
 *       on a {@link io.jvhost.bdev.BlockDevice}; ACTIVE, REMOVING (new tasks refused, in-flight
 *       ones complete), REMOVED.</li>
 *   <li>{@link io.jvhost.scsi.ScsiTask}: one command, reusable, one per virtqueue slot.</li>
 *   <li>{@link io.jvhost.scsi.ScsiTmf}: one task management function, reusable.</li>
 * </ul>
 *
 * <h2>How a transport drives it</h2>
 * <pre>{@code
 * // setup, per virtqueue slot:
 * ScsiTask task = new ScsiTask(segMax).completion(this::taskDone).attachment(slot);
 * // per request, on the reactor thread that owns the target's BlockChannel:
 * ScsiTarget target = device.target(targetId);           // null: VIRTIO_SCSI_S_BAD_TARGET
 * task.reset().cdb(guestMem, cdbAddr, cdbSize).lun(lun).tag(id)
 *     .direction(ScsiTask.Direction.FROM_DEVICE);        // or TO_DEVICE / NONE
 * for (each data descriptor) if (!task.addBuffer(seg, off, len)) fail the request;
 * target.execute(task, channelOf(target));               // channel of target.lun(0).bdev()
 * // ... the reactor loop keeps calling channel.poll() ...
 * void taskDone(ScsiTask t) {                             // once per execute
 *     if (t.targetUnavailable()) respond BAD_TARGET;
 *     else if (t.status() == ScsiStatus.TASK_ABORTED) respond ABORTED;
 *     else respond OK with t.status(), t.senseBuffer()[0..t.senseLength()), t.residual();
 * }
 * }</pre>
 * The completion callback runs before {@code execute} returns for commands that need no block
 * I/O (and for every error), otherwise from {@code channel.poll()}; the task is free for reuse
 * inside the callback. READ/WRITE allocate nothing.
 *
 * <h2>Threading</h2>
 * All tasks and task management functions of a LUN run on one reactor thread, which opens and
 * polls the LUN's block channel; a multi-queue transport must therefore serve all its request
 * queues for a target from that thread. Target add/remove may come from any thread.
 */
package io.jvhost.scsi;
