"""The insights page's charts, drawn on the server as SVG by matplotlib and served inside the page: no
script, no CDN, and the same picture in every browser.

Readable without colour: each measure has its own fill pattern as well as its own shade (dark to light),
every bar carries its value as text, and a measure that cannot be shown says so in words ("för få svar").
The numbers are in a table beside every chart, too.
"""

import io
import re
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from services.insights.figures import MEASURES, TOO_FEW, Row

#: Shade (dark to light, so the order survives greyscale printing) and hatch pattern of each measure.
STYLE = {"reached": ("#123f63", ""), "read": ("#3f7cac", "//"), "understood": ("#8fb8d8", ".."),
         "involved": ("#d5e5f2", "xx")}


def bar_chart(rows: Sequence[Row], description: str) -> str:
    """Grouped horizontal bars, one group of four per row (0–100 %), as an inline <svg> element whose
    accessible name is `description`."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    height = 0.9 + 1.05 * max(len(rows), 1)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "budkavle", "font.size": 10,
                                "hatch.linewidth": 0.8}):
        fig = Figure(figsize=(8.5, height))
        ax = fig.add_subplot()
        bar = 0.2
        for m, (measure, name) in enumerate(MEASURES):
            colour, hatch = STYLE[measure]
            for i, row in enumerate(rows):
                y = i + (m - 1.5) * bar
                value = row.share(measure)
                if value is None:
                    words = TOO_FEW if measure in ("understood", "involved") and row.sent else "–"
                    ax.text(1, y, f"{name}: {words}", va="center", fontsize=8, color="#333333")
                    continue
                ax.barh(y, value, height=bar * 0.92, color=colour, hatch=hatch, edgecolor="#1a1a1a", linewidth=0.6)
                ax.text(value + 1, y, f"{name}: {value:.0f} %".replace(".", ","), va="center", fontsize=8,
                        color="#1a1a1a")
        # A title is text, "$…$" in it too: never mathematics.
        ax.set_yticks(range(len(rows)), [_short(r.label) for r in rows], parse_math=False)
        ax.set_ylim(len(rows) - 0.45, -0.55)  # top to bottom, with room for each row's last label
        ax.set_xlim(0, 130)
        ax.set_xticks(range(0, 101, 20), [f"{x} %" for x in range(0, 101, 20)])
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(handles=[Patch(facecolor=STYLE[m][0], hatch=STYLE[m][1], edgecolor="#1a1a1a", label=n)
                           for m, n in MEASURES], loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4,
                  frameon=False)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(out.getvalue(), description)


def _short(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _inline(svg: str, description: str) -> str:
    """The document as an element of the page: no XML prologue, scalable, named for assistive technology."""
    start = svg.index("<svg")
    element = svg[start:]
    element = re.sub(r'^<svg ([^>]*?)width="[^"]*" height="[^"]*"',
                     lambda m: f'<svg {m.group(1)}role="img" aria-label={quoteattr(description)} '
                               f'class="chart"', element, count=1)
    return element
