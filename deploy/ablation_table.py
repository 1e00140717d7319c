"""The table of deploy/ablation_isi_layers.sh: accuracy, hidden spikes, energy per inference
of the network's own events and of its stock-lowered form (Loihi profile), stock neurons,
synaptic memory and cores, one row per variant; writes OUT/ablation.md and OUT/ablation.json.

    python deploy/ablation_table.py OUT NAME [NAME ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from imsnn_lava.analysis import energy as en
from imsnn_lava.outputs import write_json_atomic, write_text_atomic

PJ_PER_UJ = 1e6


def row(out: Path, name: str, prof) -> dict:
    res = json.loads((out / f"{name}-lava.json").read_text())
    sizes = json.loads((out / f"{name}-resources.json").read_text())
    hidden = sum(layer["spikes_per_sample"] for layer in res["layers"][:-1])
    low = res["lowered"]
    return {
        "variant": name, "accuracy": res["accuracy"], "num_samples": res["num_samples"],
        "layers": [layer["synapse"] for layer in res["layers"]],
        "phi_max": [r.get("phi_max", 1) for r in res["network"]["layers"]],
        "hidden_spikes_per_sample": hidden,
        "energy_uj": en.energy_per_inference(res["layers"], prof)["total_pj"] / PJ_PER_UJ,
        "lowered_energy_uj": en.energy_per_inference(low["layers"], prof)["total_pj"]
        / PJ_PER_UJ,
        "lowered_neurons": low["neurons"], "lowered_processes": low["processes"],
        "synaptic_memory_kbit": sum(r["synaptic_memory_bits"] for r in sizes["rows"]) / 1e3,
        "cores": sizes["cores"],
    }


def main(argv: list[str]) -> int:
    out, names = Path(argv[0]), argv[1:]
    prof = en.load_profile("loihi")
    rows = [row(out, n, prof) for n in names]
    head = ("| variant | synapses | phi_max | accuracy | hidden spikes/sample | energy (uJ) | "
            "stock-lowered energy (uJ) | stock neurons | synaptic memory (kbit) | cores |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['variant']} | {'/'.join(r['layers'])} | "
                     f"{'/'.join(map(str, r['phi_max']))} | {100 * r['accuracy']:.2f}% | "
                     f"{r['hidden_spikes_per_sample']:.1f} | {r['energy_uj']:.2f} | "
                     f"{r['lowered_energy_uj']:.2f} | {r['lowered_neurons']:,} | "
                     f"{r['synaptic_memory_kbit']:,.0f} | {r['cores']} |")
    write_text_atomic(out / "ablation.md", "\n".join(lines) + "\n")
    write_json_atomic(out / "ablation.json", {"profile": "loihi", "rows": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
