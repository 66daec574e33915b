import Testing
@testable import SSEConsoleCore

/// Golden renderings of `Fixtures.state()`. Expected screens are compared row by row as plain
/// text (trailing spaces trimmed); styles are checked separately below.
@Suite struct GoldenTests {
    private func expectScreen(_ canvas: Canvas, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let actual = canvas.plainText
        let lines = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(actual.count == lines.count, sourceLocation: sourceLocation)
        for (row, (got, want)) in zip(actual, lines).enumerated() {
            #expect(got == want, "row \(row)", sourceLocation: sourceLocation)
        }
        for line in actual {
            #expect(displayWidth(of: line) <= canvas.width, "overflow: \(line)", sourceLocation: sourceLocation)
        }
    }

    @Test func screen80x24() {
        let canvas = Fixtures.render(Fixtures.state(), cols: 80, rows: 24)
        expectScreen(canvas, #"""
 127.0.0.1:8080 cl 4 in 12.0/s out 9.9k/s drop 3 kick 1 ref 2 to 3s tol 3
── Clients 4 (1 leaving) ─ sort: id ▲ ───────────────────────────── [focused] ──
  ID▲               ADDRESS                     AGE     EVENTS     ERR   BACKLOG
> alice             192.168.1.20:51234        2h01m     12,345     0/3        0B
  alice             192.168.1.21:51300        1m05s        120     0/3        0B
  bob               10.0.0.7:40001            4m03s        873     2/3     12.3K
  carol             172.16.0.3:33000       over-tol         50     3/3        0B
  dashboard-日本    [::1]:60000                 12s          4     1/3      300B
── Log 7 ───────────────────────────────────────────────────────────────────────
11:58:55 connect                  alice             192.168.1.21:51300
11:59:30 broadcast   greeting                   11B hello⏎world
11:59:40 broadcastTo price        bob           42B {"symbol":"ACME","price":10…
11:59:48 connect                  dashboard…        [::1]:60000
11:59:55 error                    bob               write timed out after 3s (2…
11:59:59 disconnect               carol             over tolerance (3/3)
12:00:00 kick                     mallory           kicked 1 connection






broadcast greeting → 4 clients
> broadcast greeting hello wor
"""#)
        #expect(canvas.cursor == CursorPosition(row: 23, column: 30))
    }

    @Test func screen120x40() {
        let canvas = Fixtures.render(Fixtures.state(), cols: 120, rows: 40)
        expectScreen(canvas, #"""
 http://127.0.0.1:8080  up 1h02m  cl 4  in 12.0/s out 9.9k/s 5.1MB/s  drop 3 kick 1 ref 2  to 3s tol 3  auth off
── Clients 4 (1 leaving) ─ sort: id ▲ ───────────────────────────────────────────────────────────────────── [focused] ──
  ID▲                               ADDRESS                          AGE     EVENTS     ERR   TOT.ERR   BACKLOG     SENT
> alice                             192.168.1.20:51234             2h01m     12,345     0/3         0        0B     1.2M
  alice                             192.168.1.21:51300             1m05s        120     0/3         0        0B     4.0K
  bob                               10.0.0.7:40001                 4m03s        873     2/3        17     12.3K    96.0K
  carol                             172.16.0.3:33000            over-tol         50     3/3         3        0B     2.0K
  dashboard-日本                    [::1]:60000                      12s          4     1/3         1      300B     512B
── Log 7 ───────────────────────────────────────────────────────────────────────────────────────────────────────────────
11:58:55 http    connect                      alice                    192.168.1.21:51300
11:59:30 console broadcast   greeting                              11B hello⏎world
11:59:40 api     broadcastTo price            bob                  42B {"symbol":"ACME","price":101.25,"currency":"EUR"…
11:59:48 http    connect                      dashboard-日本           [::1]:60000
11:59:55 broker  error                        bob                      write timed out after 3s (2/3)
11:59:59 broker  disconnect                   carol                    over tolerance (3/3)
12:00:00 console kick                         mallory                  kicked 1 connection






















broadcast greeting → 4 clients
> broadcast greeting hello wor
"""#)
        #expect(canvas.cursor == CursorPosition(row: 39, column: 30))
    }

    @Test func helpOverlay80x24() {
        var state = Fixtures.state()
        state.isHelpVisible = true
        let canvas = Fixtures.render(state, cols: 80, rows: 24)
        expectScreen(canvas, #"""
 127.0.0.1:8080 cl 4 in 12.0/s out 9.9k/s drop 3 kick 1 ref 2 to 3s tol 3
 ┌───────────────────────────── sse-console help ─────────────────────────────┐
 │   broadcast <type> [data...]         b        send an event to all clients │
 │   broadcastTo <id> <type> [data...]  to       send an event to one id      │
 │   kick <id>                                   disconnect a client          │
 │   ban <id> [30s|5m|2h|1d]                     kick and refuse reconnects   │
 │   unban <id>                                  lift a ban                   │
 │   clients [all|here]                          list the clients (all nodes) │
 │   topics [topic]                              list the subscribed topics   │
 │   nodes                              cluster  list the cluster's nodes     │
 │   bans                                        list the bans (u unbans)     │
 │   audit                                       show the audit trail         │
 │   filter [text]                               filter the log (empty: all)  │
 │   save <file>                                 save the log as JSON lines   │
 │   data: rest of line; \n \r \t \\ \" \u{1F600}; quote tokens "like this"   │
 │ Keys  Enter run  ↑↓ history  Tab complete  Ctrl-A/E/U/K/W edit  : command  │
 │   Esc navigate: ↑↓ PgUp PgDn Home End  Tab pane  Enter detail  Esc back    │
 │   m and / fill in the command line: Esc before typing clears it again      │
 │   k kick  B ban  m send to it  s sort  S reverse  / filter  G live  q quit │
 │   a all nodes  b bans  A audit  n nodes  t topics  r rates  c clear        │
 │                           press any key to close                           │
 └────────────────────────────────────────────────────────────────────────────┘
broadcast greeting → 4 clients
> broadcast greeting hello wor
"""#)
        #expect(canvas.cursor == nil)
    }

    @Test func monochromeNavigate80x24() {
        var state = Fixtures.state()
        state.mode = .navigate
        state.clients.moveSelection(by: 2, viewportHeight: 5)
        state.setMessage("kick: no client \"zed\" is connected", severity: .error)
        let canvas = Fixtures.render(state, cols: 80, rows: 24, colors: false)
        expectScreen(canvas, #"""
 127.0.0.1:8080 cl 4 in 12.0/s out 9.9k/s drop 3 kick 1 ref 2 to 3s tol 3
── Clients 4 (1 leaving) ─ sort: id ▲ ───────────────────────────── [focused] ──
  ID▲               ADDRESS                     AGE     EVENTS     ERR   BACKLOG
  alice             192.168.1.20:51234        2h01m     12,345     0/3        0B
  alice             192.168.1.21:51300        1m05s        120     0/3        0B
> bob               10.0.0.7:40001            4m03s        873    2/3!     12.3K
  carol             172.16.0.3:33000       over-tol         50    3/3!        0B
  dashboard-日本    [::1]:60000                 12s          4     1/3      300B
── Log 7 ───────────────────────────────────────────────────────────────────────
11:58:55 connect                  alice             192.168.1.21:51300
11:59:30 broadcast   greeting                   11B hello⏎world
11:59:40 broadcastTo price        bob           42B {"symbol":"ACME","price":10…
11:59:48 connect                  dashboard…        [::1]:60000
11:59:55 !error                   bob               write timed out after 3s (2…
11:59:59 disconnect               carol             over tolerance (3/3)
12:00:00 kick                     mallory           kicked 1 connection






! kick: no client "zed" is connected
↑↓ select  Tab pane  k kick  B ban  s sort  / filter  : command  ? help  q quit
"""#)
        #expect(canvas.cursor == nil)
        // No colour anywhere; the selection is reversed and marked, headers are bold.
        #expect(canvas.cells.allSatisfy { $0.style.foreground == .default && $0.style.background == .default })
        #expect((0..<80).allSatisfy { canvas[5, $0].style.reverse })
        #expect(canvas[2, 2].style.bold)
    }

    @Test func narrowPausedAndFiltered60x12() {
        var state = Fixtures.state()
        state.log.setFilter("o")
        state.log.scrollUp(by: 2, viewportHeight: 3)
        state.focus = .log
        expectScreen(Fixtures.render(state, cols: 60, rows: 12), #"""
 127.0.0.1:8080 4cl in12.0/s out9.9k/s d3 k1 r2 3s/3
── Clients 4 (1 leaving) ─ sort: id ▲ ─ 1–1 of 5 ───────────
  ID▲                       AGE     EVENTS     ERR   BACKLOG
> alice                   2h01m     12,345     0/3        0B
── Log 7 ─ [paused – End for live] ──────────── [focused] ──
11:58:55 connect                  alice             192.168…
11:59:30 broadcast   greeting                   11B hello⏎w…
11:59:40 broadcastTo price        bob           42B {"symbo…
11:59:48 connect                  dashboard…        [::1]:6…
11:59:55 error                    bob               write t…
broadcast greeting → 4 clients
> broadcast greeting hello wor
"""#)
    }
}
