package io.jvhost.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.jvhost.rpc.Json;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code jvhost top}'s tables and screens from canned RPC answers: the numbers, the order, the cuts. */
class TopFrameTest {
    static JsonNode json(String s) throws Exception {
        return Json.MAPPER.readTree(s.replace('\'', '"'));
    }

    /** Two samples two seconds apart (client clock; the iostat ticks also move 2 s at 1 GHz). */
    static TopSample[] samples() throws Exception {
        JsonNode controllers = json("""
                [{'ctrlr':'vhost.0','cpumask':'0x1','backend_specific':{'block':{'bdev':'Malloc0'}}},
                 {'ctrlr':'vhost.1','cpumask':'0x2','backend_specific':{'scsi':[{'luns':[{'id':0,'bdev_name':'Null0'}]}]}},
                 {'ctrlr':'idle.2','cpumask':'0x2','backend_specific':{'block':{'bdev':'Malloc9'}}}]""");
        TopSample a = new TopSample(1_000_000_000L,
                json("""
                        {'tick_rate':1000000000,'pid':42,'reactors':[
                          {'lcore':0,'busy':1000,'idle':1000,'busy_loops':10,'idle_loops':10,'sleeps':5,'wakeups':5,'idle_strategy':'backoff','lw_threads':[{'name':'vhost.0'}]},
                          {'lcore':1,'busy':0,'idle':0,'busy_loops':0,'idle_loops':0,'sleeps':0,'wakeups':0,'idle_strategy':'backoff','lw_threads':[{'name':'vhost.1'},{'name':'idle.2'}]}]}"""),
                controllers,
                json("""
                        [{'ctrlr':'vhost.0','protocol_errors':0,'failed_requests':0,'session':{'name':'vhost.0#1','queues':[
                           {'index':0,'requests':1000,'in_flight':3,'kicks':10,'calls':500,'chain_errors':0,'request_errors':0,'call_errors':0},
                           {'index':1,'requests':0,'in_flight':0,'kicks':0,'calls':0,'chain_errors':0,'request_errors':0,'call_errors':0}]}},
                         {'ctrlr':'vhost.1','protocol_errors':0,'failed_requests':0,'session':{'name':'vhost.1#1','queues':[
                           {'index':0,'requests':50,'in_flight':0,'kicks':0,'calls':50,'chain_errors':0,'request_errors':0,'call_errors':0}]}},
                         {'ctrlr':'idle.2','protocol_errors':0,'failed_requests':0,'session':null}]"""),
                json("""
                        {'tick_rate':1000000000,'ticks':5000000000,'bdevs':[
                          {'name':'Malloc0','num_read_ops':0,'num_write_ops':0,'bytes_read':0,'bytes_written':0,'read_latency_ticks':0,'write_latency_ticks':0},
                          {'name':'Null0','num_read_ops':100,'num_write_ops':0,'bytes_read':0,'bytes_written':0,'read_latency_ticks':0,'write_latency_ticks':0},
                          {'name':'Malloc9','num_read_ops':0,'num_write_ops':0,'bytes_read':0,'bytes_written':0,'read_latency_ticks':0,'write_latency_ticks':0}]}"""));
        TopSample b = new TopSample(3_000_000_000L,
                json("""
                        {'tick_rate':1000000000,'pid':42,'reactors':[
                          {'lcore':0,'busy':1501000,'idle':501000,'busy_loops':2010,'idle_loops':2010,'sleeps':5,'wakeups':5,'idle_strategy':'busy','lw_threads':[{'name':'vhost.0'}]},
                          {'lcore':1,'busy':200000,'idle':1800000,'busy_loops':0,'idle_loops':40,'sleeps':20,'wakeups':18,'idle_strategy':'backoff','dead':false,'lw_threads':[{'name':'vhost.1'},{'name':'idle.2'}]}]}"""),
                controllers,
                json("""
                        [{'ctrlr':'vhost.0','protocol_errors':0,'failed_requests':0,'session':{'name':'vhost.0#1','queues':[
                           {'index':0,'requests':21000,'in_flight':7,'kicks':30,'calls':5500,'chain_errors':1,'request_errors':0,'call_errors':0},
                           {'index':1,'requests':4000,'in_flight':1,'kicks':20,'calls':4000,'chain_errors':0,'request_errors':0,'call_errors':0}]}},
                         {'ctrlr':'vhost.1','protocol_errors':2,'failed_requests':0,'session':{'name':'vhost.1#1','queues':[
                           {'index':0,'requests':2050,'in_flight':0,'kicks':0,'calls':1050,'chain_errors':0,'request_errors':0,'call_errors':0}]}},
                         {'ctrlr':'idle.2','protocol_errors':0,'failed_requests':0,'session':null}]"""),
                json("""
                        {'tick_rate':1000000000,'ticks':7000000000,'bdevs':[
                          {'name':'Malloc0','num_read_ops':20000,'num_write_ops':4000,'bytes_read':81920000,'bytes_written':16384000,'read_latency_ticks':2000000000,'write_latency_ticks':80000000},
                          {'name':'Null0','num_read_ops':2100,'num_write_ops':0,'bytes_read':8388608,'bytes_written':0,'read_latency_ticks':6000000,'write_latency_ticks':0},
                          {'name':'Malloc9','num_read_ops':0,'num_write_ops':0,'bytes_read':0,'bytes_written':0,'read_latency_ticks':0,'write_latency_ticks':0}]}"""));
        return new TopSample[] {a, b};
    }

    @Test
    void reactorsShowBusyShareOfTheIntervalAndPerSecondRates() throws Exception {
        TopSample[] s = samples();
        List<String> lines = TopFrame.lines(TopFrame.reactors(s[0], s[1]), TopFrame.View.REACTORS.defaultSort, true);
        assertThat(lines.get(0)).startsWith("REACTOR").contains("BUSY%v");
        // reactor_0: busy +1,500,000 of +2,000,000 ticks = 75.0 %; loops +4000 over 2 s = 2000/s.
        assertThat(lines.get(1).split(" +")).containsExactly("reactor_0", "75.0", "2000", "0", "0", "busy", "vhost.0");
        // reactor_1: 10.0 %, 20 loops/s, 10 sleeps/s, 9 wakeups/s, two controllers.
        assertThat(lines.get(2).split(" +")).containsExactly("reactor_1", "10.0", "20", "10", "9", "backoff", "vhost.1,idle.2");
        // Sorted the other way, the idler reactor comes first.
        assertThat(TopFrame.lines(TopFrame.reactors(s[0], s[1]), 1, false).get(1)).startsWith("reactor_1");
    }

    @Test
    void controllersSumTheirQueuesAndTakeMiBPerSecondFromTheirBdevs() throws Exception {
        TopSample[] s = samples();
        List<String> lines = TopFrame.lines(TopFrame.controllers(s[0], s[1]), TopFrame.View.CONTROLLERS.defaultSort, true);
        // vhost.0: (20000 + 4000) requests / 2 s = 12000 IOPS; Malloc0 moved 81920000+16384000 bytes in 2 s = 46.9 MiB/s;
        // in flight 7+1; calls/req (5000+4000)/24000 = 0.38; kicks 40/2 s; errors 1 (chain).
        assertThat(lines.get(1).split(" +")).containsExactly("vhost.0", "0x1", "vhost.0#1", "12000", "46.9", "8", "0.38", "20", "1");
        // Its queues follow it, in queue order: q0 10000 IOPS, 0.25 calls/req; q1 2000 IOPS, 1.00.
        assertThat(lines.get(2).split(" +")).containsExactly("", "q0", "10000", "-", "7", "0.25", "10", "1");
        assertThat(lines.get(3).split(" +")).containsExactly("", "q1", "2000", "-", "1", "1.00", "10", "0");
        // vhost.1 (scsi, LUN Null0): 1000 IOPS, 4.0 MiB/s, 0.50 calls/req, protocol errors counted.
        assertThat(lines.get(4).split(" +")).containsExactly("vhost.1", "0x2", "vhost.1#1", "1000", "4.0", "0", "0.50", "0", "2");
        assertThat(lines.get(5)).contains("q0");
        // No session: zero IOPS, no calls/req, last.
        assertThat(lines.get(6).split(" +")).containsExactly("idle.2", "0x2", "-", "0", "0.0", "0", "-", "0", "0");
        assertThat(lines).hasSize(7);
    }

    @Test
    void bdevsShowRatesAndAverageLatencyOverTheInterval() throws Exception {
        TopSample[] s = samples();
        List<String> lines = TopFrame.lines(TopFrame.bdevs(s[0], s[1]), TopFrame.View.BDEVS.defaultSort, true);
        // Malloc0: 20000 reads + 4000 writes over 2 s (the target's ticks) = 10000 + 2000 IOPS;
        // read latency 2e9 ticks / 20000 = 100 us; write 8e7 / 4000 = 20 us.
        assertThat(lines.get(1).split(" +")).containsExactly("Malloc0", "12000", "10000", "2000", "46.9", "39.1", "7.8", "100.0", "20.0");
        // Null0: 2000 reads / 2 s, 8 MiB / 2 s, 6e6 / 2000 = 3 us; no writes: no write latency.
        assertThat(lines.get(2).split(" +")).containsExactly("Null0", "1000", "1000", "0", "4.0", "4.0", "0.0", "3.0", "-");
        assertThat(lines.get(3)).startsWith("Malloc9");
        // By name, ascending.
        assertThat(TopFrame.lines(TopFrame.bdevs(s[0], s[1]), 0, false).subList(1, 4)).extracting(l -> l.split(" ")[0])
                .containsExactly("Malloc0", "Malloc9", "Null0");
    }

    @Test
    void theFirstSampleAloneShowsNoRates() throws Exception {
        TopSample[] s = samples();
        List<String> lines = TopFrame.lines(TopFrame.controllers(null, s[1]), 3, true);
        // Cumulative counts are not rates: every IOPS is 0 and the order falls back to the name.
        assertThat(lines.subList(1, lines.size())).filteredOn(l -> !l.startsWith(" ")).extracting(l -> l.split(" +")[0])
                .containsExactly("idle.2", "vhost.0", "vhost.1");
        assertThat(lines).filteredOn(l -> l.startsWith("vhost.0")).singleElement()
                .satisfies(l -> assertThat(l.split(" +")).containsExactly("vhost.0", "0x1", "vhost.0#1", "0", "0.0", "8", "-", "0", "1"));
    }

    @Test
    void theScreenIsCutToTheTerminalsWidthAndHeight() throws Exception {
        TopSample[] s = samples();
        TopFrame.Table t = TopFrame.controllers(s[0], s[1]);
        List<String> wide = TopFrame.screen("title", t, 3, true, 200, 30);
        assertThat(wide).hasSize(30);
        assertThat(wide.get(1)).contains("[2 Controllers]").contains("sort: IOPS (desc)");
        assertThat(wide.get(29)).contains("q: quit");
        assertThat(wide).anyMatch(l -> l.contains("ERRORS"));

        List<String> narrow = TopFrame.screen("title", t, 3, true, 30, 8);
        assertThat(narrow).hasSize(8).allMatch(l -> l.length() <= 30);
        assertThat(narrow.get(3)).isEqualTo("CONTROLLER  CPUMASK  SESSION");
        // 8 lines: title, tabs, blank, 4 for the table (header, 2 rows, "more"), help: the other 4 of 6 rows are counted.
        assertThat(narrow.get(4)).startsWith("vhost.0");
        assertThat(narrow.get(6)).startsWith("... 4 more rows");
        assertThat(narrow.get(7)).startsWith("1/2/3 or Tab");
    }

    @Test
    void jsonRowsNestTheQueues() throws Exception {
        TopSample[] s = samples();
        JsonNode a = TopFrame.json(TopFrame.controllers(s[0], s[1]), 3, true);
        assertThat(a.get(0).path("controller").asText()).isEqualTo("vhost.0");
        assertThat(a.get(0).path("iops").asDouble()).isEqualTo(12000.0);
        assertThat(a.get(0).path("queues").get(1).path("queue").asInt()).isEqualTo(1);
        assertThat(a.get(0).path("queues").get(1).path("calls_per_req").asDouble()).isEqualTo(1.0);
        assertThat(a.get(2).path("calls_per_req").isNull()).isTrue();
    }
}
