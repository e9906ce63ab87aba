"""`replica.FinishHeap`: pops the smallest (finish step, request) pair, as heapq over tuples does,
in both builds (the compiled one sifts two C arrays)."""

from __future__ import annotations

from heapq import heappop, heappush

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import native
from sim.engine import replica as python_replica

BUILDS = [python_replica] + ([native.compiled_replica] if native.compiled_replica else [])


# Steps and requests from small ranges: many equal steps, some pairs pushed twice (a request
# preempted and readmitted with the same finish step); pops only while the heap is not empty.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 20), st.integers(0, 12)),
        st.tuples(st.just("pop"), st.just(0), st.just(0)),
    ),
    max_size=400,
)


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_pops_in_heapq_order(build, ops):
    heap, ref = build.FinishHeap(), []
    for op, step, i in ops:
        if op == "push":
            heap.push(step, i)
            heappush(ref, (step, i))
        elif ref:
            assert (heap.top_step(), heap.top_req()) == ref[0]
            heap.pop()
            heappop(ref)
        assert heap.n == len(ref)
    while ref:  # and the rest, in order (past the first growth of the C arrays: 64 pairs)
        assert (heap.top_step(), heap.top_req()) == heappop(ref)
        heap.pop()
    assert heap.n == 0


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_large_steps_and_many_pairs(build):
    heap = build.FinishHeap()
    pairs = [((k * 7919) % 1000 + 2**40, k) for k in range(5000)]
    for step, i in pairs:
        heap.push(step, i)
    out = []
    while heap.n:
        out.append((heap.top_step(), heap.top_req()))
        heap.pop()
    assert out == sorted(pairs)
