#!/usr/bin/env python3
"""Render a tmux pane capture (with SGR colours) to a PNG "screenshot".

    tmux capture-pane -p -e -t TARGET | scripts/ansi2png.py --cols 100 --rows 30 \
        --title "my app" --out screenshots/foo.png

Handles SGR 0/1/2/4/7/22/24/27, 30-37/40-47, 90-97/100-107, 39/49, 38;5;N / 48;5;N and
38;2;R;G;B / 48;2;R;G;B (also the colon forms). Other escape sequences are skipped.
"""
import argparse, glob, re, sys, unicodedata
from PIL import Image, ImageDraw, ImageFont

try:
    from wcwidth import wcwidth as _wcwidth
except ImportError:
    _wcwidth = None

BG, FG = (0x1e, 0x1e, 0x2e), (0xd8, 0xd8, 0xd8)   # default background / foreground
TITLE_BG, TITLE_FG = (0x32, 0x32, 0x3c), (0xb8, 0xb8, 0xc0)
PALETTE16 = [  # 0-7 normal, 8-15 bright
    "#585b70", "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#bac2de",
    "#7f849c", "#ff7b86", "#b5e890", "#ffd68a", "#82c4ff", "#dd9bf0", "#7fd8e0", "#f5f5f5"]
FONT_DIRS = ["/usr/share/fonts", "/usr/local/share/fonts", "/System/Library/Fonts", "/Library/Fonts"]
# Fallbacks for glyphs the main font lacks (CJK, emoji, symbols), tried in this order.
FALLBACK_PATTERNS = ["DejaVuSans.ttf", "NotoSansMonoCJK*", "NotoSansCJK*", "wqy-microhei*",
                     "wqy-zenhei*", "DroidSansFallback*", "NotoColorEmoji*", "Symbola*",
                     "NotoSansSymbols2*"]


def palette256(n):
    if n < 16:
        return tuple(int(PALETTE16[n][i:i + 2], 16) for i in (1, 3, 5))
    if n < 232:  # 6x6x6 colour cube
        n -= 16
        lv = [0, 95, 135, 175, 215, 255]
        return lv[n // 36], lv[n // 6 % 6], lv[n % 6]
    g = 8 + 10 * (n - 232)
    return g, g, g


def char_width(ch):
    if _wcwidth is not None:
        w = _wcwidth(ch)
        return 1 if w < 0 else w  # control/unknown: take one cell
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# ---------------------------------------------------------------- parsing
# CSI (any final byte), OSC (BEL or ST terminated), charset designation, other 2-byte ESC.
ESC_RE = re.compile(r"\x1b(?:\[([0-9;:?<=>]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+].|.)")
DEFAULT = dict(fg=None, bg=None, bold=False, dim=False, rev=False, ul=False)


def apply_sgr(st, params):
    # Each parameter may carry colon sub-parameters ("38:2::R:G:B"); keep them grouped.
    ps = [[int(x) if x else 0 for x in p.split(":")] for p in (params.split(";") if params else [""])]
    i = 0
    while i < len(ps):
        p, sub = ps[i][0], ps[i][1:]
        if p == 0: st.update(DEFAULT)
        elif p == 1: st["bold"] = True
        elif p == 2: st["dim"] = True
        elif p == 22: st["bold"] = st["dim"] = False
        elif p == 4: st["ul"] = not sub or sub[0] != 0
        elif p == 24: st["ul"] = False
        elif p == 7: st["rev"] = True
        elif p == 27: st["rev"] = False
        elif 30 <= p <= 37: st["fg"] = p - 30
        elif 40 <= p <= 47: st["bg"] = p - 40
        elif 90 <= p <= 97: st["fg"] = p - 90 + 8
        elif 100 <= p <= 107: st["bg"] = p - 100 + 8
        elif p == 39: st["fg"] = None
        elif p == 49: st["bg"] = None
        elif p in (38, 48):
            if sub:  # colon form: 38:5:N or 38:2:[colourspace:]R:G:B
                args = sub
            else:    # semicolon form consumes following parameters
                args = [q[0] for q in ps[i + 1:i + 5]]
            col, used = None, 0
            rgb = args[-3:] if sub and len(args) >= 5 else args[1:4]  # colon form may have a colourspace id
            if args[:1] == [5] and len(args) >= 2:
                col, used = palette256(args[1] % 256), 2
            elif args[:1] == [2] and len(rgb) == 3:
                col, used = tuple(max(0, min(255, v)) for v in rgb), 4
            st["fg" if p == 38 else "bg"] = col
            if not sub:
                i += used
        i += 1


def parse(text, cols, rows):
    """Return a rows x cols grid of cells: (text, style) or None for a wide-char tail."""
    lines = text.replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    st, grid = dict(DEFAULT), []
    for line in lines:
        row, pos = [], 0
        for m in ESC_RE.finditer(line + "\x1b[z"):  # sentinel match flushes the tail text
            for ch in line[pos:m.start()]:
                if ch == "\t":
                    row.extend([(" ", dict(st))] * (8 - len(row) % 8))
                    continue
                w = char_width(ch)
                if w == 0:
                    if row and row[-1] is not None:  # combining mark: join previous cell
                        row[-1] = (row[-1][0] + ch, row[-1][1])
                    elif len(row) >= 2:
                        row[-2] = (row[-2][0] + ch, row[-2][1])
                    continue
                row.append((ch, dict(st, wide=w == 2)))
                if w == 2:
                    row.append(None)
            pos = m.end()
            if m.group(2) == "m":
                apply_sgr(st, m.group(1))
        grid.append(row)
    cols = cols or max([len(r) for r in grid] + [1])
    rows = rows or max(len(grid), 1)
    out = []
    for r in range(rows):
        row = grid[r][:cols] if r < len(grid) else []
        if row and row[-1] is not None and row[-1][1].get("wide"):
            row[-1] = (" ", row[-1][1])  # wide char cut in half by the right edge
        # tmux omits trailing default-attribute spaces: pad with default cells.
        row += [(" ", dict(DEFAULT))] * (cols - len(row))
        out.append(row)
    return out, cols, rows


# ---------------------------------------------------------------- fonts
def find_font(patterns):
    for pat in patterns:
        for d in FONT_DIRS:
            hits = sorted(glob.glob(f"{d}/**/{pat}", recursive=True))
            if hits:
                return hits[0]
    return None


class Fonts:
    def __init__(self, path, size):
        path = path or find_font(["DejaVuSansMono.ttf", "DejaVu Sans Mono.ttf", "*Mono*.ttf"])
        if not path:
            sys.exit("ansi2png: no monospace font found; pass --font PATH")
        self.size = size
        self.regular = ImageFont.truetype(path, size)
        try:
            self.bold = ImageFont.truetype(path.replace(".ttf", "-Bold.ttf"), size)
        except OSError:
            self.bold = self.regular
        self.asc, desc = self.regular.getmetrics()
        # Cell = advance width x full line height, so box-drawing glyphs touch their neighbours.
        self.cw, self.ch = round(self.regular.getlength("M")), self.asc + desc
        self.fallbacks = []
        for pat in FALLBACK_PATTERNS:
            p = find_font([pat])
            if p:
                try:  # colour-bitmap fonts (Noto Color Emoji) only load at their strike size
                    color = "Emoji" in p
                    self.fallbacks.append((ImageFont.truetype(p, 109 if color else size), color))
                except OSError:
                    pass
        self.cache = {}

    @staticmethod
    def has_glyph(font, ch):
        # Pillow has no cmap query: compare against the .notdef rendering of a private-use char.
        try:
            m = font.getmask(ch)
            if not m.getbbox():
                return ch.isspace()
            n = font.getmask("\U0010fffd")
            return m.size != n.size or bytes(m) != bytes(n)
        except Exception:
            return False

    def pick(self, ch, bold):
        """Return (font, is_colour_bitmap) able to draw ch, or None for a placeholder box."""
        main = self.bold if bold else self.regular
        key = (ch, bold)
        if key not in self.cache:
            self.cache[key] = (main, False) if self.has_glyph(main, ch[0]) else next(
                ((f, c) for f, c in self.fallbacks if self.has_glyph(f, ch[0])), None)
        return self.cache[key]


# ---------------------------------------------------------------- rendering
def resolve(style):
    fg, bg = style["fg"], style["bg"]
    fg = FG if fg is None else palette256(fg) if isinstance(fg, int) else fg
    bg = BG if bg is None else palette256(bg) if isinstance(bg, int) else bg
    if style["rev"]:
        fg, bg = bg, fg
    if style["dim"]:
        fg = tuple((a + b) // 2 for a, b in zip(fg, bg))
    return fg, bg


def render(grid, cols, rows, fonts, title=None, cursor=None, pad=10):
    cw, chh = fonts.cw, fonts.ch
    bar = round(chh * 1.8) if title is not None else 0
    img = Image.new("RGB", (cols * cw + 2 * pad, rows * chh + 2 * pad + bar), BG)
    d = ImageDraw.Draw(img)
    if title is not None:
        d.rectangle([0, 0, img.width, bar - 1], fill=TITLE_BG)
        r, cy = max(3, bar // 7), bar // 2
        for k, c in enumerate([(0xff, 0x5f, 0x57), (0xfe, 0xbc, 0x2e), (0x28, 0xc8, 0x40)]):
            cx = pad + r + k * (3 * r)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
        d.text((img.width / 2, cy), title, font=fonts.regular, fill=TITLE_FG, anchor="mm")
    for y, row in enumerate(grid):
        for x, cell in enumerate(row):
            if cell is None:
                continue
            ch, style = cell
            fg, bg = resolve(style)
            if cursor == (y, x):
                fg, bg = bg, (fg if fg != bg else FG)
            w = 2 if style.get("wide") else 1
            x0, y0 = pad + x * cw, pad + bar + y * chh
            if bg != BG:
                d.rectangle([x0, y0, x0 + w * cw - 1, y0 + chh - 1], fill=bg)
            if style["ul"]:
                d.line([x0, y0 + chh - 2, x0 + w * cw - 1, y0 + chh - 2], fill=fg)
            if ch == " ":
                continue
            choice = fonts.pick(ch, style["bold"])
            if choice is None:  # no font has it: placeholder box
                d.rectangle([x0 + 2, y0 + 3, x0 + w * cw - 3, y0 + chh - 4], outline=fg)
            elif choice[1]:  # colour bitmap emoji: render big, scale into the cell(s)
                glyph = Image.new("RGBA", (160, 140))
                ImageDraw.Draw(glyph).text((0, 0), ch, font=choice[0], embedded_color=True)
                if glyph.getbbox():
                    glyph = glyph.crop(glyph.getbbox())
                    s = min(w * cw / glyph.width, chh / glyph.height)
                    glyph = glyph.resize((max(1, round(glyph.width * s)), max(1, round(glyph.height * s))),
                                         Image.LANCZOS)
                    img.paste(glyph, (x0 + (w * cw - glyph.width) // 2, y0 + (chh - glyph.height) // 2),
                              glyph)
            else:
                f, dx = choice[0], 0
                if w == 2 or f not in (fonts.regular, fonts.bold):
                    # Other metrics: shrink over-wide glyphs to fit the cell(s), then centre.
                    if f.getlength(ch) > w * cw + 1:
                        f = f.font_variant(size=max(6, int(fonts.size * w * cw / f.getlength(ch))))
                    dx = (w * cw - f.getlength(ch)) / 2
                # Anchor on the baseline so all fonts share the main font's baseline.
                d.text((x0 + dx, y0 + fonts.asc), ch, font=f, fill=fg, anchor="ls")
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="capture file (default: stdin)")
    ap.add_argument("--cols", type=int, help="pane width (pad/crop to it)")
    ap.add_argument("--rows", type=int, help="pane height (pad/crop to it)")
    ap.add_argument("--out", required=True, help="output PNG path")
    ap.add_argument("--font", help="monospace TTF (default: DejaVu Sans Mono)")
    ap.add_argument("--size", type=int, default=15, help="font size in px (default 15)")
    ap.add_argument("--title", help="draw a window title bar with this title")
    ap.add_argument("--cursor", help="draw a block cursor at ROW,COL (0-based)")
    a = ap.parse_args()
    data = open(a.input, "rb").read() if a.input else sys.stdin.buffer.read()
    grid, cols, rows = parse(data.decode("utf-8", "replace"), a.cols, a.rows)
    cursor = tuple(int(v) for v in a.cursor.split(",")) if a.cursor else None
    render(grid, cols, rows, Fonts(a.font, a.size), a.title, cursor).save(a.out)


if __name__ == "__main__":
    main()
