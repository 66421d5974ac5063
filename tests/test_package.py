"""The package's shape: imports point down the stages (DESIGN.md), there are no cycles, and the
analysis and the planner start without torch or any training module."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scaling_sweep"
# stage -> the stages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "training": {"core", "data"},
    "analysis": {"core"},
    "planning": {"core", "analysis"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """scaling_sweep modules that path imports anywhere (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scaling_sweep"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("scaling_sweep"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imported_modules(path) if m in modules and m != name}
            for name, path in modules.items()}


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None  # None: the top-level entry modules


def test_imports_point_down_the_stages():
    wrong = [f"{a} imports {b}" for a, targets in import_graph().items() for b in targets
             if stage(a) and stage(b) and stage(b) != stage(a) and stage(b) not in ALLOWED[stage(a)]]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_analysis_and_planning_load_neither_torch_nor_training():
    code = (
        "import sys, scaling_sweep\n"
        "from scaling_sweep import fit_power_law, fit_chinchilla, plan_compute, read_sweep, laws\n"
        "import scaling_sweep.analysis.analyze, scaling_sweep.analysis.figures, scaling_sweep.planning.plan\n"
        "import scaling_sweep.analyze, scaling_sweep.plan, scaling_sweep.runs\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'scaling_sweep.training',"
        " 'scaling_sweep.data')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_the_notebook_api_fits_a_handful_of_points():
    from scaling_sweep import fit_power_law, plan_compute

    N = [1e6, 3e6, 1e7, 3e7, 1e8]
    fit = fit_power_law(N, [(8.8e13 / n) ** 0.076 for n in N], var="N")
    assert abs(fit.params["alpha_N"] - 0.076) < 1e-9
    assert plan_compute(1e21, law="chinchilla").D / plan_compute(1e21).N > 19.9
