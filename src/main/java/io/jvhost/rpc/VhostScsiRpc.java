package io.jvhost.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jvhost.scsi.ScsiTarget;
import io.jvhost.target.Controller;
import io.jvhost.target.VhostTarget;
import io.jvhost.target.VirtioScsiDevice;

import java.util.List;

/**
 * SPDK's vhost-scsi methods ({@code vhost_create_scsi_controller},
 * {@code vhost_scsi_controller_add_target}, {@code _remove_target}) and the {@code scsi} and
 * {@code vhost_scsi} config subsystems.
 */
final class VhostScsiRpc {
    static final int DEFAULT_NUM_QUEUES = 16;

    private VhostScsiRpc() {}

    static void register(Methods m) {
        VhostTarget t = m.target();
        m.register("vhost_create_scsi_controller", p -> create(t, p));
        m.register("vhost_scsi_controller_add_target", p -> addTarget(t, p));
        m.register("vhost_scsi_controller_remove_target", p -> removeTarget(t, p));
        m.registerSubsystem("scsi", List.of("bdev"), () -> NullNode.getInstance());
        m.registerSubsystem("vhost_scsi", List.of("scsi"), () -> config(t));
    }

    private static JsonNode create(VhostTarget t, Params p) {
        String ctrlr = p.string("ctrlr");
        String cpumask = p.string("cpumask", null);
        p.bool("delay", false);
        int numQueues = p.intInRange("num_queues", DEFAULT_NUM_QUEUES, 1, 62);
        p.done();
        t.createScsiController(ctrlr, numQueues, cpumask);
        return BooleanNode.TRUE;
    }

    private static JsonNode addTarget(VhostTarget t, Params p) {
        String ctrlr = p.string("ctrlr");
        int num = p.intInRange("scsi_target_num", -1, -1, ScsiTarget.MAX_ID);
        String bdev = p.string("bdev_name");
        p.done();
        return IntNode.valueOf(t.addScsiTarget(ctrlr, num, bdev));
    }

    private static JsonNode removeTarget(VhostTarget t, Params p) {
        String ctrlr = p.string("ctrlr");
        long num = p.integer("scsi_target_num");
        p.done();
        if (num < 0 || num > ScsiTarget.MAX_ID) {
            throw RpcException.invalidParams("vhost_scsi_controller_remove_target: parameter 'scsi_target_num' must be in 0.." + ScsiTarget.MAX_ID + ", got " + num);
        }
        t.removeScsiTarget(ctrlr, (int) num);
        return BooleanNode.TRUE;
    }

    /** backend_specific.scsi of vhost_get_controllers, as SPDK reports it. */
    static ArrayNode targets(VirtioScsiDevice d) {
        ArrayNode a = Json.arr();
        for (ScsiTarget st : d.scsi().targets()) {
            if (st.state() != ScsiTarget.State.ACTIVE) continue;
            ObjectNode o = a.addObject();
            o.put("scsi_dev_num", st.id()).put("id", st.id()).put("target_name", st.name());
            o.putArray("luns").addObject().put("id", 0).put("bdev_name", st.lun(0).bdev().name());
        }
        return a;
    }

    private static JsonNode config(VhostTarget t) {
        ArrayNode a = Json.arr();
        for (Controller c : t.controllers()) {
            if (!(c.device() instanceof VirtioScsiDevice d)) continue;
            ObjectNode params = a.addObject().put("method", "vhost_create_scsi_controller").putObject("params");
            params.put("ctrlr", c.name()).put("cpumask", VhostRpc.cpumask(c));
            if (d.requestQueues() != DEFAULT_NUM_QUEUES) params.put("num_queues", d.requestQueues());
            for (ScsiTarget st : d.scsi().targets()) {
                if (st.state() != ScsiTarget.State.ACTIVE) continue;
                a.addObject().put("method", "vhost_scsi_controller_add_target").putObject("params")
                        .put("ctrlr", c.name()).put("scsi_target_num", st.id()).put("bdev_name", st.lun(0).bdev().name());
            }
            ObjectNode co = VhostRpc.coalescingEntry(c);
            if (co != null) a.add(co);
        }
        return a;
    }
}
