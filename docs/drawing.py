"""SVG diagrams for the docs, drawn from plain data (no torch): blocks and U-Nets.

``docs/hooks.py`` reads the modules into ``Diagram`` and ``Level`` records; this module lays them
out and writes inline SVG. Colours and lines use ``currentColor`` and CSS classes
(``docs/stylesheets/blocks.css``), so the diagrams follow the light and dark palettes and need no
script, font or network access.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

COLORS = {"norm": "#3f7fd8", "act": "#e0892b", "conv": "#2e9d5b", "up": "#9a5bd1", "other": "#888888"}
"""Box colour per kind of layer."""

LEGEND = {"norm": "normalizer", "act": "activator", "conv": "convolution", "up": "up-sampling", "other": "other"}
"""Legend text per kind of layer."""


@dataclass
class Box:
    """One leaf layer of a diagram."""

    label: str
    detail: str
    kind: str


@dataclass
class Lane:
    """A column of a diagram: groups of boxes, each group with a title (a unit, or the shortcut)."""

    groups: list[tuple[str, list[Box]]]


@dataclass
class Diagram:
    """What a diagram shows: the branch, the shortcut lane (None for a lone unit), what follows the sum."""

    input_shape: list[int]
    output_shape: list[int]
    branch: Lane
    shortcut: Lane | None
    after: list[Box]


@dataclass
class Level:
    """One stage of a U-Net as shown in its table and diagram."""

    name: str
    what: str
    params: int
    shape: list[int]
    part: str  # 'stem', 'encoder', 'decoder' or 'head'


# Block diagrams, in SVG pixels: a layer box, the gap between boxes, the padding and title of a unit's
# group, the margin around the drawing, the gap between the branch and the shortcut lanes.
BOX_W, BOX_H, GAP, PAD, TITLE, MARGIN, LANE_GAP = 236, 36, 12, 9, 18, 14, 26
LANE_W = BOX_W + 2 * PAD


def arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    """A straight arrow (vertical or horizontal) ending at (x2, y2)."""
    if x1 == x2:
        s = 1 if y2 > y1 else -1
        head = f"{x2 - 4},{y2 - 7 * s} {x2 + 4},{y2 - 7 * s} {x2},{y2}"
    else:
        s = 1 if x2 > x1 else -1
        head = f"{x2 - 7 * s},{y2 - 4} {x2 - 7 * s},{y2 + 4} {x2},{y2}"
    return f'<line class="edge" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/><polygon class="head" points="{head}"/>'


def draw_box(item: Box, x: float, y: float, width: float = BOX_W, height: float = BOX_H) -> str:
    """One box at (x, y): the label and, smaller, one line per line of its detail."""
    color = COLORS[item.kind]
    lines = "".join(
        f'<text x="{x + 9}" y="{y + 29 + 14 * i}" class="detail">{html.escape(line)}</text>'
        for i, line in enumerate(item.detail.splitlines())
    )
    return (
        f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="5" fill="{color}" fill-opacity="0.16" '
        f'stroke="{color}" stroke-width="1.3"/>'
        f'<text x="{x + 9}" y="{y + 15}" class="label">{html.escape(item.label)}</text>{lines}'
    )


def draw_lane(lane: Lane, x: float, y: float) -> tuple[list[str], float, float]:
    """Draw a lane with its left edge at x from y down; return its SVG, first box top and last box bottom."""
    parts: list[str] = []
    center, top, bottom = x + LANE_W / 2, None, None
    for title, items in lane.groups:
        height = TITLE + len(items) * (BOX_H + GAP) - GAP + PAD
        parts.append(f'<rect class="group" x="{x}" y="{y}" width="{LANE_W}" height="{height}" rx="7"/>')
        parts.append(f'<text x="{x + LANE_W - 8}" y="{y + 13}" class="title" text-anchor="end">{html.escape(title)}</text>')
        box_y = y + TITLE
        for item in items:
            if bottom is None:
                top = box_y  # the first box of the lane
            else:
                parts.append(arrow(center, bottom, center, box_y))
            parts.append(draw_box(item, x + PAD, box_y))
            bottom = box_y + BOX_H
            box_y += BOX_H + GAP
        y += height + GAP
    return parts, top, bottom


def pill(text: str, cx: float, y: float) -> str:
    """A rounded label for the input or the output, centred on cx."""
    width = 8 * len(text) + 20
    return (
        f'<rect class="pill" x="{cx - width / 2}" y="{y}" width="{width}" height="24" rx="12"/>'
        f'<text x="{cx}" y="{y + 16}" class="label" text-anchor="middle">{html.escape(text)}</text>'
    )


def draw_block(diagram: Diagram) -> str:
    """The SVG of a diagram: input, branch lane (left), shortcut lane (right), sum, output, legend."""
    parts: list[str] = []
    bx = MARGIN
    cb = bx + LANE_W / 2
    width = 2 * MARGIN + LANE_W + (LANE_W + LANE_GAP if diagram.shortcut is not None else 0)
    parts.append(pill("input " + "×".join(map(str, diagram.input_shape)), cb, MARGIN))
    split = MARGIN + 24 + 12
    lane_y = split + 16
    lane_parts, top, bottom = draw_lane(diagram.branch, bx, lane_y)
    parts += lane_parts
    parts.append(arrow(cb, MARGIN + 24, cb, top))
    y = bottom
    if diagram.shortcut is not None:
        sx = bx + LANE_W + LANE_GAP
        cs = sx + LANE_W / 2
        parts.append(f'<line class="edge" x1="{cb}" y1="{split}" x2="{cs}" y2="{split}"/>')
        if diagram.shortcut.groups:
            short_parts, s_top, s_bottom = draw_lane(diagram.shortcut, sx, lane_y)
            parts += short_parts
            parts.append(arrow(cs, split, cs, s_top))
        else:
            s_bottom = lane_y + 40
            parts.append(f'<text x="{cs + 8}" y="{lane_y + 24}" class="title">shortcut: identity</text>')
            parts.append(f'<line class="edge" x1="{cs}" y1="{split}" x2="{cs}" y2="{s_bottom}"/>')
        radius = 11
        cy = max(bottom, s_bottom) + 16 + radius
        parts.append(arrow(cb, bottom, cb, cy - radius))
        parts.append(f'<line class="edge" x1="{cs}" y1="{s_bottom}" x2="{cs}" y2="{cy}"/>')
        parts.append(arrow(cs, cy, cb + radius, cy))
        parts.append(
            f'<circle class="sum" cx="{cb}" cy="{cy}" r="{radius}"/>'
            f'<text x="{cb}" y="{cy + 5}" class="label" text-anchor="middle">+</text>'
            f'<text x="{cb + radius + 6}" y="{cy - radius - 3}" class="title">sum</text>'
        )
        y = cy + radius
    for item in diagram.after:
        parts.append(arrow(cb, y, cb, y + 16))
        parts.append(draw_box(item, bx + PAD, y + 16))
        y += 16 + BOX_H
    parts.append(arrow(cb, y, cb, y + 16))
    parts.append(pill("output " + "×".join(map(str, diagram.output_shape)), cb, y + 16))
    y += 16 + 24 + 18
    kinds = {item.kind for _, items in diagram.branch.groups for item in items}
    kinds |= {item.kind for lane in [diagram.shortcut] if lane for _, items in lane.groups for item in items}
    kinds |= {item.kind for item in diagram.after}
    key, y = legend({LEGEND[k]: COLORS[k] for k in COLORS if k in kinds}, y, width)
    return svg_element(parts + key, width, y + MARGIN)


def legend(entries: dict[str, str], y: float, width: float) -> tuple[list[str], float]:
    """A colour key (text -> colour) from y down, wrapped to ``width``; return its SVG and bottom."""
    parts: list[str] = []
    x = MARGIN
    for text, color in entries.items():
        step = 30 + 6 * len(text)
        if x > MARGIN and x + step > width - MARGIN:
            x, y = MARGIN, y + 18
        parts.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" rx="2" fill="{color}" fill-opacity="0.5" '
            f'stroke="{color}"/><text x="{x + 17}" y="{y + 10}" class="detail">{html.escape(text)}</text>'
        )
        x += step
    return parts, y + 12


MIN_SCALE = 0.9
"""The smallest scale a diagram is shown at: its smallest text (10.5 px, ``.detail`` in blocks.css) stays
above 9 px; a narrower page (a phone) scrolls the figure instead (tests/test_layout.py checks both)."""


def svg_element(parts: list[str], width: float, height: float) -> str:
    """The inline ``<svg>`` holding ``parts``; it scales down to the page's width, to ``MIN_SCALE`` at most."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gen-svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" style="min-width: {width * MIN_SCALE:.0f}px" role="img">' + "".join(parts) + "</svg>"
    )


def figure(svg: str, caption: str) -> str:
    """A ``<figure>`` holding an SVG and its caption (HTML)."""
    return f'<figure class="gen-diagram">{svg}<figcaption>{caption}</figcaption></figure>'


def figures(items: Sequence[str]) -> str:
    """Figures side by side where the page is wide enough, stacked otherwise."""
    return '<div class="gen-diagrams">\n' + "\n".join(items) + "\n</div>"


# ---------------------------------------------------------------------------------- U-Net diagrams


UNET_W, UNET_H, UNET_GAP, UNET_PITCH = 224, 50, 104, 70
UNET_KINDS = {"stem": "conv", "head": "conv", "encoder": "norm", "decoder": "up"}
UNET_LEGEND = {"conv": "stem and head", "norm": "encoder level", "up": "decoder stage"}


def draw_unet(levels: list[Level], input_size: Sequence[int]) -> str:
    """The SVG of a U-Net: encoder levels down the left, decoder stages up the right, skips across.

    Encoder level ``i`` sits on row ``i + 1``, the decoder stage that fuses its skip on the same
    row; a stem sits on row 0, and so does a last decoder stage without a skip; the head sits
    above the top of the right column.
    """
    encoders = [lv for lv in levels if lv.part == "encoder"]
    decoders = [lv for lv in levels if lv.part == "decoder"]
    stem = [lv for lv in levels if lv.part == "stem"]
    head = [lv for lv in levels if lv.part == "head"]
    skipped = len(encoders) - 1  # decoder stages with a skip; deepest level first
    left = {0: lv for lv in stem} | {i + 1: lv for i, lv in enumerate(encoders)}
    right = {skipped - i: lv for i, lv in enumerate(decoders[:skipped])}
    right |= {-i: lv for i, lv in enumerate(decoders[skipped:])}
    right[min(right) - 1] = head[0]
    top = min(min(left), min(right)) - 1
    lx, rx = MARGIN, MARGIN + UNET_W + UNET_GAP
    lc, rc = lx + UNET_W / 2, rx + UNET_W / 2

    def y_of(row: int) -> float:
        return MARGIN + (row - top) * UNET_PITCH

    def box_of(level: Level) -> Box:
        shape = "×".join(map(str, level.shape[1:]))
        return Box(f"{level.name}", f"{level.what}\nout {shape} · {level.params:,} params", UNET_KINDS[level.part])

    parts: list[str] = []
    for column, x in ((left, lx), (right, rx)):
        for row, level in column.items():
            parts.append(draw_box(box_of(level), x, y_of(row), UNET_W, UNET_H))
    rows = sorted(left)
    parts += [arrow(lc, y_of(a) + UNET_H, lc, y_of(b)) for a, b in zip(rows, rows[1:])]
    rows = sorted(right)
    parts += [arrow(rc, y_of(b), rc, y_of(a) + UNET_H) for a, b in zip(rows, rows[1:])]
    for row in range(1, skipped + 1):  # skips, level by level
        y = y_of(row) + UNET_H / 2
        parts.append(arrow(lx + UNET_W, y, rx, y).replace('class="edge"', 'class="edge skip"'))
        parts.append(f'<text x="{lx + UNET_W + UNET_GAP / 2}" y="{y - 5}" class="title" text-anchor="middle">skip</text>')
    deepest = y_of(max(left)) + UNET_H / 2  # the deepest level feeds the first decoder stage
    parts.append(f'<line class="edge" x1="{lx + UNET_W}" y1="{deepest}" x2="{rc}" y2="{deepest}"/>')
    parts.append(arrow(rc, deepest, rc, y_of(max(right)) + UNET_H))
    parts.append(pill("input " + "×".join(map(str, input_size[1:])), lc, y_of(min(left)) - 40))
    parts.append(arrow(lc, y_of(min(left)) - 16, lc, y_of(min(left))))
    parts.append(pill("output " + "×".join(map(str, head[0].shape[1:])), rc, y_of(min(right)) - 40))
    parts.append(arrow(rc, y_of(min(right)), rc, y_of(min(right)) - 16))
    width = 2 * MARGIN + 2 * UNET_W + UNET_GAP
    shown = {UNET_KINDS[level.part] for level in levels}
    entries = {text: COLORS[kind] for kind, text in UNET_LEGEND.items() if kind in shown}
    key, y = legend(entries, y_of(max(left)) + UNET_H + 22, width)
    return svg_element(parts + key, width, y + MARGIN)
