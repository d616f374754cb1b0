import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard: one page, its script and its style, compiled into the binary (no CDN, no
/// build step). The page loads without the token; its data calls (`/v1/stats`,
/// `/v1/channels?sort=subscribers`, `/v1/clients`, the kick) send it. The script reads the
/// token from the URL fragment (`/#token=…`, which browsers never send to the server) or asks
/// for it once, and keeps it in the tab's `sessionStorage`. It builds the page with
/// `textContent` only, so a channel name or a client id is never markup.
enum Dashboard {
    static let paths: Set<String> = ["/", "/dashboard.js", "/dashboard.css"]

    static func page() -> Response { response(html, type: "text/html; charset=utf-8") }
    static func script() -> Response { response(javascript, type: "text/javascript; charset=utf-8") }
    static func style() -> Response { response(css, type: "text/css; charset=utf-8") }

    static func response(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        // Same-origin script, style and data only; never in a frame (the page has a kick button).
        headers[.contentSecurityPolicy] = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Herald</title>
        <link rel="stylesheet" href="dashboard.css">
        </head>
        <body>
        <header>
          <h1>Herald</h1>
          <span class="muted">version <span data-stat="version">…</span>, up <span data-stat="uptime">…</span></span>
          <span id="status" class="status">connecting…</span>
        </header>
        <form id="login" hidden>
          <label>Admin token <input id="token" type="password" autocomplete="off" required></label>
          <button type="submit">Open</button>
          <p id="login-error" class="error"></p>
        </form>
        <main id="main" hidden>
          <section class="cards">
            <div class="card"><h2>Connections</h2><output data-stat="connections"></output><small data-stat="transports"></small></div>
            <div class="card"><h2>Sessions</h2><output data-stat="sessions"></output></div>
            <div class="card"><h2>Subscriptions</h2><output data-stat="subscriptions"></output></div>
            <div class="card"><h2>Channels with a log</h2><output data-stat="loggedChannels"></output></div>
            <div class="card"><h2>Published / s</h2><output data-stat="publishedPerSecond"></output><small><span data-stat="published"></span> in all</small></div>
            <div class="card"><h2>Delivered / s</h2><output data-stat="deliveredPerSecond"></output><small><span data-stat="delivered"></span> in all</small></div>
            <div class="card"><h2>Dropped</h2><output data-stat="dropped"></output><small><span data-stat="slowConsumers"></span> slow-consumer disconnects</small></div>
            <div class="card"><h2>Memory</h2><output data-stat="rss"></output><small>resident</small></div>
          </section>
          <section>
            <h2>Messages per second <small class="muted">(last <span id="window">0</span> s; peak <span id="peak">0</span>)</small></h2>
            <svg id="sparkline" viewBox="0 0 600 80" preserveAspectRatio="none" role="img" aria-label="messages per second">
              <polyline id="spark-delivered" class="delivered" points=""></polyline>
              <polyline id="spark-published" class="published" points=""></polyline>
            </svg>
            <p class="legend"><span class="delivered">■ delivered</span> <span class="published">■ published</span></p>
          </section>
          <section>
            <h2>Busiest channels</h2>
            <table id="channels">
              <thead><tr><th>Channel</th><th class="n">Subscribers</th><th class="n">Last offset</th><th>Retained</th></tr></thead>
              <tbody></tbody>
            </table>
          </section>
          <section>
            <h2>Clients <small class="muted">(first <span id="client-limit"></span>)</small></h2>
            <table id="clients">
              <thead><tr><th>Client</th><th>Transport</th><th>Subscriptions</th><th class="n">Queued bytes</th><th></th></tr></thead>
              <tbody></tbody>
            </table>
          </section>
        </main>
        <script src="dashboard.js"></script>
        </body>
        </html>
        """#

    static let javascript = #"""
        "use strict";
        (() => {
          const CLIENT_LIMIT = 50, CHANNEL_LIMIT = 10, SAMPLES = 120;
          const $ = (selector) => document.querySelector(selector);
          const number = (n) => Math.round(n).toLocaleString("en-US");
          const bytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(2) + " GiB" : (n / (1 << 20)).toFixed(1) + " MiB";
          const duration = (s) => {
            const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
            return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
          };
          const samples = [];
          let token = null, timer = null, refreshes = 0;

          class Unauthorized extends Error {}

          // The token: from the fragment (then taken out of the address bar), or kept in this tab.
          const fragment = new URLSearchParams(location.hash.slice(1));
          if (fragment.has("token")) {
            token = fragment.get("token");
            sessionStorage.setItem("herald-admin-token", token);
            history.replaceState(null, "", location.pathname + location.search);
          } else {
            token = sessionStorage.getItem("herald-admin-token");
          }

          async function api(method, path) {
            const headers = token ? { "Authorization": "Bearer " + token } : {};
            const response = await fetch(path, { method, headers, cache: "no-store" });
            if (response.status === 401) throw new Unauthorized("the token was refused");
            const body = await response.json();
            if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
            return body;
          }

          function show(name, text) {
            for (const element of document.querySelectorAll(`[data-stat="${name}"]`)) element.textContent = text;
          }

          function cell(row, text, className) {
            const td = row.insertCell();
            td.textContent = text;
            if (className) td.className = className;
            return td;
          }

          function renderStats(stats) {
            const connections = stats.connections;
            show("version", stats.version);
            show("uptime", duration(Number(stats.uptimeSeconds)));
            show("connections", number(connections.total));
            show("transports", Object.keys(connections).filter((k) => k !== "total").map((k) => `${k} ${number(connections[k])}`).join(", "));
            show("sessions", number(stats.sessions));
            show("subscriptions", number(stats.subscriptions));
            show("loggedChannels", number(stats.channels.logged));
            show("published", number(stats.messages.published.total));
            show("delivered", number(stats.messages.delivered.total));
            show("publishedPerSecond", number(stats.messages.published.perSecond));
            show("deliveredPerSecond", number(stats.messages.delivered.perSecond));
            show("dropped", number(stats.drops.conflatedOrDropped));
            show("slowConsumers", number(stats.drops.slowConsumerDisconnects));
            show("rss", stats.rssBytes === undefined ? "n/a" : bytes(stats.rssBytes));
            samples.push({ published: Number(stats.messages.published.perSecond), delivered: Number(stats.messages.delivered.perSecond) });
            if (samples.length > SAMPLES) samples.shift();
            const peak = Math.max(1, ...samples.map((s) => Math.max(s.published, s.delivered)));
            for (const series of ["delivered", "published"]) {
              // The newest sample at the right edge.
              const points = samples.map((s, i) => `${(600 - (samples.length - 1 - i) * 600 / (SAMPLES - 1)).toFixed(1)},${(78 - s[series] / peak * 76).toFixed(1)}`);
              $(`#spark-${series}`).setAttribute("points", points.join(" "));
            }
            $("#window").textContent = samples.length;
            $("#peak").textContent = number(peak);
          }

          function renderChannels(channels) {
            const body = $("#channels tbody");
            body.replaceChildren();
            for (const channel of channels) {
              const row = body.insertRow();
              cell(row, channel.name);
              cell(row, number(channel.subscribers), "n");
              cell(row, channel.lastOffset === undefined ? "" : String(channel.lastOffset), "n");
              cell(row, channel.retained ? "yes" : "");
            }
            if (!channels.length) cell(body.insertRow(), "no channels yet").colSpan = 4;
          }

          function renderClients(clients) {
            const body = $("#clients tbody");
            body.replaceChildren();
            for (const client of clients) {
              const row = body.insertRow();
              row.dataset.clientId = client.clientId;
              cell(row, client.clientId, "id");
              cell(row, client.transport || "");
              cell(row, client.subscriptions.join(" "));
              cell(row, number(client.pendingBytes), "n");
              const button = document.createElement("button");
              button.textContent = "Kick";
              button.className = "kick";
              button.addEventListener("click", () => kick(client.clientId, button));
              row.insertCell().append(button);
            }
            if (!clients.length) cell(body.insertRow(), "no clients connected").colSpan = 5;
          }

          // Two clicks: the first arms the button for three seconds, the second disconnects.
          async function kick(clientId, button) {
            if (button.dataset.armed !== "yes") {
              button.dataset.armed = "yes";
              button.textContent = "Confirm";
              setTimeout(() => { button.dataset.armed = ""; button.textContent = "Kick"; }, 3000);
              return;
            }
            button.disabled = true;
            try {
              await api("DELETE", `v1/clients/${encodeURIComponent(clientId)}?reason=${encodeURIComponent("disconnected from the dashboard")}`);
              setStatus(`disconnected ${clientId}`);
            } catch (error) {
              setStatus(error.message, true);
            }
            refresh();
          }

          function setStatus(text, isError) {
            const status = $("#status");
            status.textContent = text;
            status.classList.toggle("error", !!isError);
          }

          async function refresh() {
            try {
              const [stats, channels, clients] = await Promise.all([
                api("GET", "v1/stats"),
                api("GET", `v1/channels?sort=subscribers&limit=${CHANNEL_LIMIT}`),
                api("GET", `v1/clients?limit=${CLIENT_LIMIT}`),
              ]);
              renderStats(stats);
              renderChannels(channels.channels);
              renderClients(clients.clients);
              $("#login").hidden = true;
              $("#main").hidden = false;
              refreshes += 1;
              document.body.dataset.refreshes = String(refreshes);
              setStatus(`live · ${new Date().toLocaleTimeString()}`);
            } catch (error) {
              if (error instanceof Unauthorized) {
                clearInterval(timer);
                timer = null;
                $("#main").hidden = true;
                $("#login").hidden = false;
                $("#login-error").textContent = token ? "The token was refused." : "";
                setStatus("needs the admin token", true);
              } else {
                setStatus(`no answer: ${error.message}`, true);
              }
            }
          }

          function start() {
            $("#client-limit").textContent = CLIENT_LIMIT;
            if (!timer) timer = setInterval(refresh, 1000);
            refresh();
          }

          $("#login").addEventListener("submit", (event) => {
            event.preventDefault();
            token = $("#token").value.trim();
            sessionStorage.setItem("herald-admin-token", token);
            start();
          });
          start();
        })();
        """#

    static let css = #"""
        :root { color-scheme: light dark; --accent: #2f6fde; --accent2: #d9822b; --line: #8884; }
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 16px 32px; }
        header { display: flex; align-items: baseline; gap: 16px; border-bottom: 1px solid var(--line); }
        h1 { font-size: 22px; margin: 12px 0; }
        h2 { font-size: 14px; margin: 20px 0 8px; }
        .muted, small { color: #888; font-weight: normal; }
        .status { margin-left: auto; color: #3a3; }
        .error { color: #d33; }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; margin-top: 16px; }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
        .card h2 { margin: 0; color: #888; font-weight: normal; }
        .card output { display: block; font-size: 26px; font-variant-numeric: tabular-nums; }
        #sparkline { width: 100%; height: 80px; border: 1px solid var(--line); border-radius: 6px; }
        polyline { fill: none; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
        polyline.delivered { stroke: var(--accent); }
        polyline.published { stroke: var(--accent2); }
        .legend .delivered { color: var(--accent); }
        .legend .published { color: var(--accent2); }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
        .n { text-align: right; font-variant-numeric: tabular-nums; }
        td.id { font-family: ui-monospace, monospace; font-size: 12px; }
        form { margin: 24px 0; }
        """#
}
