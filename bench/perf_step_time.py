"""How fast is ServingProfile.step_time_s? The engine calls it once per batch step (~1e6 calls in
a day-long fleet run), so it must stay in the low microseconds."""

from __future__ import annotations

import time

from sim.perf import build_profile


def calls_per_s(profile, n: int = 1_000_000) -> float:
    step = profile.step_time_s
    start = time.perf_counter()
    for i in range(n):
        step(512 if i & 7 == 0 else 0, 131_328.0 if i & 7 == 0 else 0.0, 64, 64 * 1500)
    return n / (time.perf_counter() - start)


def main() -> None:
    for model, gpu, tp in (
        ("llama-3.1-8b", "h100-sxm", 1),
        ("mixtral-8x7b", "h100-sxm", 2),
        ("llama-3.1-70b", "a100-80gb", 4),
    ):
        profile = build_profile(model, gpu, tp=tp)
        rate = calls_per_s(profile)
        print(f"step_time_s {model} tp{tp}: {rate / 1e6:.2f} M calls/s ({1e6 / rate:.2f} us/call)")
    start = time.perf_counter()
    for _ in range(1000):
        build_profile("llama-3.1-70b", "h100-sxm", tp=8, precision="fp8")
    print(f"build_profile: {(time.perf_counter() - start) * 1e3:.1f} us/call (1,000 calls)")


if __name__ == "__main__":
    main()
