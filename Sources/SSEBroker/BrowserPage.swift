/// A self-contained HTML page for the broker: it subscribes with the browser's own `EventSource`
/// and publishes with `fetch`, so it shows what a real browser client sees — reconnects after a
/// kick, `Last-Event-ID` resumption, a ban's `204` ending the stream.
///
/// No external assets (styles and script are inline). The page shows the connection state, the
/// client id, the last event id and the number of times the stream opened; a live list of events
/// (newest first: type, id, data); and a form that `POST`s a broadcast, or a targeted one when a
/// client id is given, showing the broker's answer or its error text.
///
/// The "topics" field chooses the topics it subscribes to before it connects (`?topic=` for each;
/// empty: every event), and the page shows the topics of the stream it has. `EventSource` has no
/// catch-all for named events: the page listens for `message`, the types in its "types" field and
/// its exact topics (the type of anything it publishes is added). Query parameters preset it:
/// `?id=alice&types=price,news&topics=price,orders.*` (`lastEventId=0` replays the history first;
/// `connect=0` waits for the Connect button).
public enum BrowserPage {
    /// The page, with the endpoints at `routes` (paths are relative to the page's origin).
    public static func html(routes: BrokerRoutes = BrokerRoutes()) -> String {
        template
            .replacing("__CONNECT_PATH__", with: jsString(routes.connect))
            .replacing("__BROADCAST_PATH__", with: jsString(routes.broadcast))
    }

    /// A JavaScript string literal that is also safe inside `<script>` (no `</script>`).
    static func jsString(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "<": result += "\\u003c"
            case ">": result += "\\u003e"
            case "&": result += "\\u0026"
            case "\u{2028}": result += "\\u2028"
            case "\u{2029}": result += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

private let template = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>SSE broker</title>
    <style>
      :root { --fg: #1d2330; --muted: #6b7385; --line: #dde1e8; --accent: #2f6fdd; --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030; }
      * { box-sizing: border-box; }
      body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f6f7f9; }
      header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1d2330; color: #fff; }
      header h1 { font-size: 16px; margin: 0; font-weight: 600; }
      header .origin { color: #aab3c5; font-family: ui-monospace, monospace; font-size: 12px; }
      main { display: grid; grid-template-columns: 340px 1fr; gap: 16px; padding: 16px 20px; }
      section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
      h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 10px; }
      label { display: block; font-size: 12px; color: var(--muted); margin: 8px 0 3px; }
      input, textarea { width: 100%; padding: 6px 8px; border: 1px solid var(--line); border-radius: 5px; font: 13px ui-monospace, monospace; }
      textarea { height: 70px; resize: vertical; }
      button { margin-top: 10px; padding: 6px 14px; border: 0; border-radius: 5px; background: var(--accent); color: #fff; font-weight: 600; cursor: pointer; }
      button.secondary { background: #e6e9ef; color: var(--fg); }
      dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 12px; margin: 0; }
      dt { color: var(--muted); } dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
      .state { font-weight: 600; }
      .state.open { color: var(--ok); } .state.connecting { color: var(--warn); } .state.closed { color: var(--bad); }
      #result { margin-top: 10px; padding: 8px; border-radius: 5px; font: 12px ui-monospace, monospace; white-space: pre-wrap; display: none; }
      #result.ok { display: block; background: #e8f6ee; color: var(--ok); } #result.error { display: block; background: #fdecec; color: var(--bad); }
      table { width: 100%; border-collapse: collapse; font-size: 13px; }
      th { text-align: left; color: var(--muted); font-weight: 500; border-bottom: 1px solid var(--line); padding: 4px 8px; }
      td { border-bottom: 1px solid #f0f2f5; padding: 4px 8px; vertical-align: top; }
      td.id, td.type, td.time { font-family: ui-monospace, monospace; white-space: nowrap; }
      td.data { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }
      td.time { color: var(--muted); }
      #log { margin-top: 8px; font: 12px ui-monospace, monospace; color: var(--muted); max-height: 120px; overflow: auto; }
      .empty { color: var(--muted); padding: 12px 8px; }
    </style>
    </head>
    <body>
    <header><h1>SSE broker</h1><span class="origin" id="origin"></span></header>
    <main>
      <div>
        <section>
          <h2>Subscription</h2>
          <dl>
            <dt>state</dt><dd><span id="state" class="state closed">closed</span></dd>
            <dt>client id</dt><dd id="client-id">–</dd>
            <dt>last event id</dt><dd id="last-event-id">–</dd>
            <dt>opened</dt><dd id="opens">0</dd>
            <dt>resume</dt><dd id="resume">–</dd>
            <dt>topics</dt><dd id="topics-shown">–</dd>
          </dl>
          <label for="id">client id (empty: a random one)</label>
          <input id="id" autocomplete="off">
          <label for="topics">topics to subscribe to (comma-separated; patterns with *; empty: every event)</label>
          <input id="topics" autocomplete="off" placeholder="price, orders.*">
          <label for="types">event types to listen for (comma-separated)</label>
          <input id="types" value="message" autocomplete="off">
          <button id="connect">Connect</button>
          <button id="disconnect" class="secondary">Disconnect</button>
          <div id="log"></div>
        </section>
        <section style="margin-top:16px">
          <h2>Publish</h2>
          <form id="publish">
            <label for="pub-type">type</label>
            <input id="pub-type" value="message" autocomplete="off">
            <label for="pub-target">target client id (empty: broadcast to everyone)</label>
            <input id="pub-target" autocomplete="off">
            <label for="pub-data">data</label>
            <textarea id="pub-data">hello from the browser</textarea>
            <button type="submit">Publish</button>
          </form>
          <div id="result"></div>
        </section>
      </div>
      <section>
        <h2>Events <span id="count"></span></h2>
        <table id="events">
          <thead><tr><th>time</th><th>id</th><th>type</th><th>data</th></tr></thead>
          <tbody></tbody>
        </table>
        <div class="empty" id="empty">No events yet.</div>
      </section>
    </main>
    <script>
    "use strict";
    const CONNECT_PATH = __CONNECT_PATH__;
    const BROADCAST_PATH = __BROADCAST_PATH__;
    const MAX_ROWS = 500;
    const $ = (id) => document.getElementById(id);
    let source = null, listening = new Set(), opens = 0, lastEventId = "", received = 0;

    function log(text) {
      const line = document.createElement("div");
      line.textContent = new Date().toLocaleTimeString() + "  " + text;
      $("log").prepend(line);
      while ($("log").childElementCount > 50) $("log").lastElementChild.remove();
    }
    function setState(state, text) {
      $("state").className = "state " + state;
      $("state").textContent = text || state;
    }
    function types() {
      return $("types").value.split(",").map((t) => t.trim()).filter((t) => t.length > 0);
    }
    function topics() {
      return $("topics").value.split(",").map((t) => t.trim()).filter((t) => t.length > 0);
    }
    function onEvent(event) {
      lastEventId = event.lastEventId;
      $("last-event-id").textContent = lastEventId || "–";
      received += 1;
      $("count").textContent = "(" + received + ")";
      $("empty").style.display = "none";
      const row = document.createElement("tr");
      for (const [cls, text] of [["time", new Date().toLocaleTimeString()], ["id", event.lastEventId], ["type", event.type], ["data", event.data]]) {
        const cell = document.createElement("td");
        cell.className = cls;
        cell.textContent = text;
        row.appendChild(cell);
      }
      const body = document.querySelector("#events tbody");
      body.prepend(row);
      while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
    }
    function listen(type) {
      if (!source || listening.has(type)) return;
      listening.add(type);
      source.addEventListener(type, onEvent);
    }
    function connect() {
      disconnect();
      let id = $("id").value.trim();
      if (!id) {
        id = "web-" + Math.random().toString(16).slice(2, 8);
        $("id").value = id;
      }
      let url = CONNECT_PATH + "?id=" + encodeURIComponent(id);
      // A new EventSource cannot send Last-Event-ID itself; the broker takes it as a parameter.
      if (lastEventId) url += "&lastEventId=" + encodeURIComponent(lastEventId);
      const chosen = topics();
      for (const topic of chosen) url += "&topic=" + encodeURIComponent(topic);
      $("client-id").textContent = id;
      $("topics-shown").textContent = chosen.length ? chosen.join(", ") : "all events";
      setState("connecting");
      source = new EventSource(url);
      listening = new Set();
      for (const type of types()) listen(type);
      // An exact topic is an event type: listen for it too (a pattern's types must be in "types").
      for (const topic of chosen) if (!topic.includes("*")) listen(topic);
      // The broker could not replay everything since lastEventId (a restart, an old id): a real app
      // refetches its state here.
      source.addEventListener("sse-gap", (event) => {
        const gap = JSON.parse(event.data);
        $("resume").textContent = "gap after " + gap.lastEventId;
        log("gap: events after " + gap.lastEventId + " may be missing (oldest kept: " + (gap.oldestId ?? "none") + ") — refetch state");
      });
      source.onopen = () => {
        $("resume").textContent = lastEventId ? "resumed after " + lastEventId : "–";
        opens += 1;
        $("opens").textContent = String(opens);
        setState("open");
        log(opens === 1 ? "open" : "open again (reconnected)");
      };
      source.onerror = () => {
        if (source.readyState === EventSource.CONNECTING) {
          setState("connecting", "reconnecting…");
          log("stream ended; the browser reconnects with Last-Event-ID " + (lastEventId || "(none)"));
        } else {
          setState("closed");
          log("closed (the server refused the connection, or a ban said 204)");
        }
      };
    }
    function disconnect() {
      if (source) { source.close(); source = null; setState("closed"); log("disconnected"); }
    }
    $("connect").onclick = connect;
    $("disconnect").onclick = disconnect;
    $("types").onchange = () => { for (const type of types()) listen(type); };
    $("publish").onsubmit = async (event) => {
      event.preventDefault();
      const type = $("pub-type").value.trim();
      const target = $("pub-target").value.trim();
      if (type && !types().includes(type)) {
        $("types").value = types().concat([type]).join(", ");
        listen(type);
      }
      let url = BROADCAST_PATH + "?type=" + encodeURIComponent(type);
      if (target) url += "&id=" + encodeURIComponent(target);
      const result = $("result");
      try {
        const response = await fetch(url, { method: "POST", body: $("pub-data").value });
        const text = await response.text();
        if (response.ok) {
          let summary = text;
          try {
            const answer = JSON.parse(text);
            summary = "event " + answer.id + " → " + answer.delivered + " connection" + (answer.delivered === 1 ? "" : "s");
          } catch (_) {}
          result.className = "ok";
          result.textContent = response.status + " " + response.statusText + ": " + summary;
        } else {
          result.className = "error";
          result.textContent = text.trim() || (response.status + " " + response.statusText);
        }
      } catch (error) {
        result.className = "error";
        result.textContent = String(error);
      }
    };
    $("origin").textContent = location.origin + "  ·  " + CONNECT_PATH + "  ·  " + BROADCAST_PATH;
    const params = new URLSearchParams(location.search);
    if (params.get("id")) $("id").value = params.get("id");
    if (params.get("types")) $("types").value = "message, " + params.get("types").split(",").join(", ");
    if (params.get("topics")) $("topics").value = params.get("topics").split(",").join(", ");
    if (params.get("lastEventId")) lastEventId = params.get("lastEventId");
    if (params.get("connect") !== "0") connect();
    </script>
    </body>
    </html>

    """#
