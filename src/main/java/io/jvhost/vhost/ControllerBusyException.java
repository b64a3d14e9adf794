package io.jvhost.vhost;

/**
 * A controller cannot be deleted because a front-end is connected to it (SPDK answers
 * {@code vhost_delete_controller} with EBUSY then). Nothing was changed.
 */
public final class ControllerBusyException extends IllegalStateException {
    private final String controller;
    private final String session;

    public ControllerBusyException(String controller, String session) {
        super("controller '" + controller + "' has a connected front-end (session " + session + ")");
        this.controller = controller;
        this.session = session;
    }

    public String controller() { return controller; }
    public String session() { return session; }
}
