"""Time and peak memory of the streaming AWS offer-file parse on a synthesised large offer file.

Writes an offer file of the real files' shape (products, terms.OnDemand, terms.Reserved with
12 reserved offers per SKU: 1yr/3yr x No/Partial/All Upfront x standard/convertible, and a
CapacityBlock twin) into a temp directory, streaming, then parses it in a fresh child process
so the figure is the parser's alone. The file is deleted afterwards; nothing is committed.

Example:

    .venv/bin/python bench/bench_aws_parse.py --mb 600
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Instance types the synthetic file cycles through: mostly CPU ones, as in the real files.
_GPU = [
    ("p5.48xlarge", "8", "98.3200000000"),
    ("p4d.24xlarge", "8", "32.7726000000"),
    ("g5.xlarge", "1", "1.0060000000"),
    ("g6e.12xlarge", "4", "10.4930000000"),
    ("inf2.48xlarge", "12", "12.9813000000"),
    ("trn1.32xlarge", "16", "21.5000000000"),
]
_CPU = [
    f"{fam}.{size}"
    for fam in ("m5", "c6i", "r7g", "t3", "m7i", "c7g", "x2idn", "i4i")
    for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")
]
_OS = ["Linux", "Windows", "RHEL", "SUSE", "Red Hat Enterprise Linux with HA", "Ubuntu Pro"]
_TENANCY = ["Shared", "Dedicated", "Host"]
_RESERVED = [(y, o, c) for y in ("1yr", "3yr") for o in ("No Upfront", "Partial Upfront",
             "All Upfront") for c in ("standard", "convertible")]  # fmt: skip
_HEAD = {"formatVersion": "v1.0", "disclaimer": "This pricing list is for informational purposes "
         "only. All prices are subject to the additional terms included in the pricing pages on "
         "http://aws.amazon.com.", "offerCode": "AmazonEC2", "version": "20260101000000",
         "publicationDate": "2026-01-01T00:00:00Z"}  # fmt: skip


def _sku(i: int) -> str:
    return f"SKU{i:013d}"


def _product(i: int) -> tuple[dict, str]:
    gpu = _GPU[i % len(_GPU)] if i % 25 == 0 else None
    instance = gpu[0] if gpu else _CPU[i % len(_CPU)]
    os_name = _OS[(i // 25) % len(_OS)] if gpu else _OS[i % len(_OS)]
    capacity_block = gpu is not None and (i // 25) % 7 == 3
    attrs = {
        "servicecode": "AmazonEC2", "location": "US East (N. Virginia)",
        "locationType": "AWS Region", "instanceType": instance, "currentGeneration": "Yes",
        "instanceFamily": "GPU instance" if gpu else "General purpose", "vcpu": "96",
        "physicalProcessor": "Intel Xeon Platinum 8275L", "clockSpeed": "3 GHz",
        "memory": "1152 GiB", "storage": "8 x 1000 SSD", "networkPerformance": "400 Gigabit",
        "processorArchitecture": "64-bit", "tenancy": _TENANCY[(i // 150) % 3] if i % 2 else "Shared",
        "operatingSystem": os_name, "licenseModel": "No License required",
        "usagetype": f"BoxUsage:{instance}",
        "operation": "RunInstances:CB" if capacity_block else "RunInstances",
        "availabilityzone": "NA", "capacitystatus": "Used", "classicnetworkingsupport": "false",
        "dedicatedEbsThroughput": "19000 Mbps", "ecu": "345",
        "enhancedNetworkingSupported": "No", "gpu": gpu[1] if gpu else "0", "gpuMemory": "NA",
        "intelAvxAvailable": "Yes", "intelAvx2Available": "Yes", "intelTurboAvailable": "Yes",
        "marketoption": "CapacityBlock" if capacity_block else "OnDemand",
        "normalizationSizeFactor": "192", "preInstalledSw": "NA",
        "processorFeatures": "Intel AVX; Intel AVX2; Intel AVX512; Intel Turbo",
        "regionCode": "us-east-1", "servicename": "Amazon Elastic Compute Cloud",
        "vpcnetworkingsupport": "true",
    }  # fmt: skip
    price = "0.0000000000" if capacity_block else (gpu[2] if gpu else f"{0.05 + i % 97 / 10:.10f}")
    return {"sku": _sku(i), "productFamily": "Compute Instance", "attributes": attrs}, price


def _dim(sku: str, code: str, n: int, unit: str, usd: str, text: str) -> tuple[str, dict]:
    rate = f"{sku}.{code}.{n}"
    return rate, {"rateCode": rate, "description": text, "beginRange": "0", "endRange": "Inf",
                  "unit": unit, "pricePerUnit": {"USD": usd}, "appliesTo": []}  # fmt: skip


def _on_demand(i: int, price: str) -> dict:
    sku, code = _sku(i), "JRTCKXETXF"
    rate, dim = _dim(sku, code, 6, "Hrs", price, f"${price} per On Demand Instance Hour")
    return {f"{sku}.{code}": {"offerTermCode": code, "sku": sku,
            "effectiveDate": "2026-01-01T00:00:00Z", "priceDimensions": {rate: dim},
            "termAttributes": {}}}  # fmt: skip


def _reserved(i: int, price: str) -> dict:
    sku, offers, hourly = _sku(i), {}, float(price)
    for n, (length, option, klass) in enumerate(_RESERVED):
        code = f"RSV{n:07d}"
        years = 1 if length == "1yr" else 3
        share = {"No Upfront": 0.0, "Partial Upfront": 0.5, "All Upfront": 1.0}[option]
        dims = dict([_dim(sku, code, 1, "Hrs", f"{hourly * 0.6 * (1 - share):.10f}",
                          "Reserved instance hour")])  # fmt: skip
        if share:
            fee = f"{hourly * 0.55 * share * 8760 * years:.0f}"
            dims.update([_dim(sku, code, 2, "Quantity", fee, "Upfront Fee")])
        offers[f"{sku}.{code}"] = {"offerTermCode": code, "sku": sku,
                                   "effectiveDate": "2026-01-01T00:00:00Z",
                                   "priceDimensions": dims,
                                   "termAttributes": {"LeaseContractLength": length,
                                                      "OfferingClass": klass,
                                                      "PurchaseOption": option}}  # fmt: skip
    return offers


def write_offer_file(path: Path, target_mb: float) -> int:
    """Write an offer file of about `target_mb` MB, streaming; returns the number of SKUs."""
    per_sku = sum(len(json.dumps(part)) for part in (_product(1)[0], _on_demand(1, "1"),
                  _reserved(1, "1"))) + 60  # fmt: skip
    n = int(target_mb * 1e6 / per_sku)
    with path.open("w") as f:
        f.write(json.dumps(_HEAD)[:-1] + ', "products": {')
        for i in range(n):
            f.write(("," if i else "") + f'"{_sku(i)}": ' + json.dumps(_product(i)[0]))
        f.write('}, "terms": {"OnDemand": {')
        for i in range(n):
            f.write(
                ("," if i else "") + f'"{_sku(i)}": ' + json.dumps(_on_demand(i, _product(i)[1]))
            )
        f.write('}, "Reserved": {')
        for i in range(n):
            f.write(
                ("," if i else "") + f'"{_sku(i)}": ' + json.dumps(_reserved(i, _product(i)[1]))
            )
        f.write('}}, "attributesList": {}}')
    return n


_CHILD = """
import sys, time, resource
from collections import Counter
from scrapers.aws import parse_offer_stream
t0 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    records = parse_offer_stream(f, Counter())
usage = resource.getrusage(resource.RUSAGE_SELF)
print(len(records), time.perf_counter() - t0, usage.ru_maxrss / 1024,
      usage.ru_utime + usage.ru_stime, Counter(r.term for r in records))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=600.0, help="size of the synthetic file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.json"
        t0 = time.perf_counter()
        n = write_offer_file(path, args.mb)
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {size_mb:.0f} MB, {n} SKUs, in {time.perf_counter() - t0:.0f} s")
        repo = Path(__file__).resolve().parents[1]
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=True, cwd=repo,
                             capture_output=True, text=True, env={**os.environ,
                             "PYTHONPATH": str(repo)}).stdout.split(maxsplit=4)  # fmt: skip
        records, seconds, rss_mb, cpu_s, terms = (
            int(out[0]),
            float(out[1]),
            float(out[2]),
            float(out[3]),
            out[4],
        )
        print(f"parse_offer_stream: {records} prices in {seconds:.1f} s wall, {cpu_s:.1f} s CPU "
              f"({size_mb / cpu_s:.0f} MB per CPU-second), peak RSS {rss_mb:.0f} MB")  # fmt: skip
        print(f"terms: {terms.strip()}")
        print(f"load: {os.getloadavg()}")
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 >= rss_mb
    return 0


if __name__ == "__main__":
    sys.exit(main())
