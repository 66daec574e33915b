// The few pieces of ncursesw that Swift cannot import directly: C globals and function-like
// macros. Everything else is called as is from `Screen` (the only Swift type that uses curses).
#ifndef SSE_CONSOLE_NCURSES_SHIM_H
#define SSE_CONSOLE_NCURSES_SHIM_H

#define NCURSES_WIDECHAR 1
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>

static inline WINDOW *shim_stdscr(void) { return stdscr; }
static inline int shim_lines(void) { return LINES; }
static inline int shim_cols(void) { return COLS; }
static inline int shim_colors(void) { return COLORS; }
static inline int shim_color_pairs(void) { return COLOR_PAIRS; }

static inline attr_t shim_a_bold(void) { return A_BOLD; }
static inline attr_t shim_a_dim(void) { return A_DIM; }
static inline attr_t shim_a_reverse(void) { return A_REVERSE; }
static inline attr_t shim_a_normal(void) { return A_NORMAL; }

/// Sets the attributes and colour pair for what is drawn next.
static inline int shim_set_style(attr_t attrs, short pair) { return wattr_set(stdscr, attrs, pair, NULL); }

static inline int shim_key_f(int n) { return KEY_F(n); }

/// Reads one key; returns OK (a character in *ch), KEY_CODE_YES (a key code in *ch) or ERR (timeout).
static inline int shim_get_wch(wint_t *ch) { return wget_wch(stdscr, ch); }

#endif
