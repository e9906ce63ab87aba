# C types for the compiled build of replica.py (Cython's "augmenting .pxd"; docs/engine.md,
# "The compiled replica"). replica.py stays the one source: setup.py compiles it with these
# declarations as `sim.engine._replica_native`, and `sim.engine.native` uses that build only when
# it was built from this very source. Annotations in replica.py are ignored by the build
# (annotation_typing=False): the types below are the only ones the compiler uses.
#
# Exactness: every integer here is a Python int in replica.py and a C long long here (token and
# step counts stay far below 2**63); every float is a C double, with the operations in the same
# order (floor division keeps Python's semantics: cdivision is off). The build passes
# -ffp-contract=off so that no a * b + c becomes a fused multiply-add. Tests compare both builds
# request by request (tests/engine/test_native.py).
cimport cython
from sim.engine._steptime_native cimport StepTimes  # the compiled steptime.py (setup.py)


cdef class Due:
    cdef public object callbacks
    cdef public bint _ok
    cdef public double t


@cython.final
cdef class BusySums:
    cdef public double window_s, weight, _end
    cdef public Py_ssize_t _cap
    cdef public object values
    cdef double[::1] _v

    @cython.locals(w=cython.double, k0=cython.longlong, k1=cython.longlong,
                   weight=cython.double, k=cython.longlong, v=cython.double[::1])
    cpdef add(self, double t0, double t1)
    cpdef _grow(self, Py_ssize_t n)


cdef class Lookahead:
    cdef public double stop_at, next_decision_s, next_arrival_t, held_min
    cdef public list held


@cython.final
cdef class FinishHeap:
    cdef public Py_ssize_t n, _cap
    cdef long long[::1] _steps, _reqs
    cdef list _h

    cpdef long long top_step(self)
    cpdef long long top_req(self)
    @cython.locals(steps=cython.longlong[::1], reqs=cython.longlong[::1], k=cython.Py_ssize_t,
                   parent=cython.Py_ssize_t, ps=cython.longlong, pr=cython.longlong)
    cpdef push(self, long long step, long long i)
    @cython.locals(steps=cython.longlong[::1], reqs=cython.longlong[::1], k=cython.Py_ssize_t,
                   n=cython.Py_ssize_t, c=cython.Py_ssize_t, step=cython.longlong,
                   i=cython.longlong, cs=cython.longlong, cr=cython.longlong)
    cpdef pop(self)
    cpdef _grow(self)


# final (no subclasses): a cpdef method called on a type with a __dict__ first looks itself up
# by name in case a Python subclass overrode it; final types skip that getattr (it was 15%
# of a self-hosted conv replay's instructions). The other final classes likewise.
@cython.final
cdef class Replica:
    cdef dict __dict__
    cdef public object env, fleet, table
    cdef public StepTimes st
    cdef public object prompt, cached, output, resume_gen, complete
    cdef public BusySums busy
    cdef public Lookahead ahead
    cdef public long long rid, gpus, kv_cap, max_seqs, max_tokens
    cdef public bint chunked, jump_enabled, merge, preplan
    cdef public bint interruptible, idle, _head_open
    cdef public object waiting, state, _ev, _ev_before, pcache
    cdef public list _wake_cbs, _step_end_cbs, _jump_end_cbs
    cdef public dict running, todo, ctx, dec, pinned
    cdef public list prefilling
    cdef public FinishHeap heap
    cdef public long long load, steps, kv_used, dec_ctx, _done
    cdef public tuple _looked_up
    cdef public list _step_chunks
    cdef public long long _step_n_dec, _jump_k, _jump_n
    cdef public double _step_start, _jump_start, _jump_t0, _jump_delta, _jump_head
    cdef public bint _jump_merged
    cdef public double seq_s, kv_s, seen, _clock, _next_t
    cdef public bint chains, _chain
    cdef public object _next_cbs

    cpdef enqueue(self, object i, double now, double next_arrival_s=*, double clock=*)
    cpdef _on_wake(self, Due ev)
    cpdef _on_step_end(self, Due ev)
    cpdef _on_jump_end(self, Due ev)
    cpdef _wait_at(self, double now, double delay, list callbacks, object priority)
    cpdef bint _chained(self, double at, list callbacks)
    @cython.locals(now=cython.double, cbs=list)
    cpdef _handle(self, list callbacks, double t)
    @cython.locals(n_dec=cython.longlong, start=cython.double)
    cpdef _step_end(self, double now)
    @cython.locals(start=cython.double, t0=cython.double, delta=cython.double,
                   k=cython.longlong, elapsed=cython.double, done=cython.longlong,
                   rest=cython.double, delay=cython.double)
    cpdef _interrupt(self, double now, double next_arrival_s=*)
    cpdef bint _preplanned(self, double cut, double next_arrival_s)
    cpdef bint _hold(self, double at)
    @cython.locals(n=cython.Py_ssize_t, k=cython.longlong, k_kv=cython.longlong,
                   finish_step=cython.longlong, t0=cython.double, t_last=cython.double,
                   delta=cython.double, dt=cython.double, delay=cython.double)
    cpdef _run(self, double now)
    @cython.locals(steps=cython.longlong, n=cython.Py_ssize_t, kv_used=cython.longlong,
                   k=cython.longlong, head=cython.double, t1=cython.double,
                   dec_ctx=cython.longlong, t0=cython.double, delta=cython.double,
                   generated=cython.longlong, finish_step=cython.longlong, at=cython.double)
    cpdef bint _merge_head(self, list chunks, long long n_dec, double dt, double now)
    @cython.locals(start=cython.double, n=cython.longlong, done=cython.longlong,
                   took=cython.double, steps=cython.longlong, merged=cython.bint,
                   head=cython.double)
    cpdef _end_jump(self, double now)
    @cython.locals(c=cython.longlong, left=cython.longlong, generated=cython.longlong,
                   kv=cython.longlong, out=cython.longlong, finish_step=cython.longlong)
    cpdef _apply_step(self, list chunks, long long n_dec, double now)
    @cython.locals(free=cython.longlong, base=cython.longlong)
    cpdef bint _admissible(self, long long n_dec, object kv_used=*)
    @cython.locals(n=cython.Py_ssize_t, attn=cython.double, prefill=cython.longlong,
                   free=cython.longlong, budget=cython.longlong, c=cython.longlong,
                   base=cython.longlong, need=cython.longlong)
    cpdef tuple _plan_step(self, double now)
    @cython.locals(freed=cython.longlong, steps=cython.longlong, finish_step=cython.longlong)
    cpdef _pop_finished(self, double now)



@cython.final
cdef class Arrivals:
    cdef public object fleet, env, never_fits
    cdef public Lookahead ahead
    cdef public list routable, cbs
    cdef public bint plain, absorb, hold, least
    cdef public long long max_queue

    @cython.locals(fleet=object, times=list, n=cython.Py_ssize_t, env=object, never_fits=object,
                   plain=cython.bint, absorb=cython.bint, hold=cython.bint, ahead=Lookahead,
                   streamed=cython.bint, table=object, base=cython.Py_ssize_t, keys=object,
                   clock=cython.double, upto=cython.double, arrived=cython.Py_ssize_t,
                   t_next=cython.double, j=object, rep=object, t=cython.double,
                   at=cython.double)
    cpdef run(self, Py_ssize_t i, double now)
    @cython.locals(reps=list, rep=Replica)
    cpdef object _route(self, object j, double now, double t_next, double clock)

@cython.locals(best=Replica, r=Replica, low=cython.longlong)
cpdef object least_loaded(list reps)
@cython.locals(ev=Due)
cpdef Due due_of(list callbacks)
cpdef schedule_from(object env, Due event, object priority, double now, double delay,
                    double clock=*)
@cython.locals(mod=cython.double, div=cython.double, fl=cython.double)
cpdef double _floordiv(double a, double b)
cpdef double landing_time(double now, double at)
cpdef double _delay_to(double now, double at)
@cython.locals(m=cython.longlong)
cpdef long long _ceil_int(double x)
@cython.locals(a=cython.double, b=cython.double, disc=cython.double, m=cython.longlong)
cpdef long long _steps_reached(double elapsed, double t0, double delta, long long k)
@cython.locals(keep=list, held=list, mine=Due, tie=Due, low=cython.double, ev=Due,
               t=cython.double, again=Due)
cpdef long long release_held(Lookahead ahead, object env, double upto, double now, Replica rep,
                             double clock=*)
