package io.jvhost.bench;

import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;

/**
 * What one {@code System.nanoTime()} costs on this machine (clock_gettime through the vDSO;
 * kvm-clock here). The target's per-request statistics read it twice per request and the
 * reactor loop once per iteration, so its price is part of every request's cost.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xms1g", "-Xmx1g"})
public class ClockBench {
    @Benchmark
    public long nanoTime() {
        return System.nanoTime();
    }
}
