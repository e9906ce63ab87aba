# C types for the compiled build of steptime.py (as replica.pxd for replica.py; setup.py builds
# `sim.engine._steptime_native`). The arithmetic is replica.py's rule: C doubles and long longs in
# the source's order of operations, no fused multiply-add, checked equal to the profile's own
# method on sample points before use (`step_times`) and by tests/engine/test_native.py.
cimport cython


cdef class StepTimes:
    cdef public double dense_read_bytes, routed_read_bytes, moe_miss, inv_gemm_bw
    cdef public double linear_flops_per_token, lm_head_flops, inv_gemm_flops
    cdef public double kv_read_per_token, kv_pad_tokens, inv_attn_bw, attn_s_per_pair
    cdef public long long allreduces, graph_max_tokens
    cdef public double ar_bytes_per_token, ar_small_max_bytes, ar_small_s, ar_large_s
    cdef public double ar_s_per_byte, eager_launch_s, step_overhead_s, per_seq_overhead_s
    cdef public double cpu_overlap
    cdef public bint graph_decode_only
    cdef public Py_ssize_t _dc_n
    cdef public double[::1] _dc_fixed, _dc_pad, _dc_cpu
    cdef public unsigned char[::1] _dc_known

    @cython.locals(weight_bytes=cython.double, read_s=cython.double, flop_s=cython.double,
                   gpu_s=cython.double, msg=cython.double, latency=cython.double)
    cpdef double fixed_gpu_s(self, long long tokens, long long logit_rows)
    @cython.locals(tokens=cython.longlong, gpu_s=cython.double, cpu_s=cython.double)
    cpdef double step(self, long long prefill_tokens, double prefill_attn_pairs,
                      long long decode_seqs, long long decode_ctx_tokens)
    cpdef clear_decode(self)
    @cython.locals(size=cython.Py_ssize_t, more=cython.Py_ssize_t)
    cpdef _grow_decode(self, Py_ssize_t n)
    @cython.locals(gpu_s=cython.double, cpu_s=cython.double)
    cpdef double decode(self, long long n, long long ctx)
