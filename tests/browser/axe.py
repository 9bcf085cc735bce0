"""axe-core in the tests' browser: installed from the npm registry (package.json's devDependencies, by
scripts/static-assets.sh) and injected into the pages under test from node_modules, never from a CDN: as an init script of the browser context
(the DevTools protocol), so the page's Content-Security-Policy (no inline scripts, no eval) stays as it is."""
from pathlib import Path

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def use_axe(page):
    """Every document the page's context opens from now on has window.axe."""
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run scripts/static-assets.sh (npm ci installs axe-core)")
    page.context.add_init_script(path=str(AXE))


def axe_violations(page, *, context=None):
    """axe-core's serious and critical violations on the page as it is now: [(rule id, impact, help, targets)]."""
    found = page.evaluate("""async (context) => {
        const result = await window.axe.run(context ? document.querySelector(context) : document,
                                             {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            targets: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
    }""", context)
    return [(v["id"], v["impact"], v["help"], v["targets"]) for v in found if v["impact"] in BLOCKING]


def assert_accessible(page, where):
    violations = axe_violations(page)
    assert violations == [], f"axe-core on {where}: {violations}"
