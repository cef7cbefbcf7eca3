/* The simulator's minimal web app (docs/simulator.md, "Web app").
 *
 * Vanilla JS, no build step, no external fetches; every URL is relative to the
 * page's origin, so it works through a reverse proxy on another host. In a
 * browser it drives the page (#user-name, #prompt, #send, #answer, #status);
 * under Node (`require`) it only exports its pure parts for the tests.
 */
"use strict";

(function () {
  var MASK64 = (1n << 64n) - 1n;
  var RHO = [];
  (function () {
    for (var t = 0; t < 24; t++) RHO.push((((t + 1) * (t + 2)) / 2) % 64);
  })();

  /* 32-bit FNV-1a over UTF-16 code units plus the finaliser (spec 3.3, E3 hash). */
  function fnv1a(text) {
    var h = 2166136261;
    for (var i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 16777619) >>> 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 2246822507) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 3266489909) >>> 0;
    h ^= h >>> 16;
    return (h >>> 0).toString(16).padStart(8, "0");
  }

  function rol(a, n) {
    return ((a << BigInt(n)) | (a >> BigInt(64 - n))) & MASK64;
  }

  /* Keccak-f[1600] on 25 BigInt lanes, lane (x, y) at index x + 5 * y. */
  function keccakF(s) {
    var R = 1;
    for (var round = 0; round < 24; round++) {
      var C = [], D = [], x, y, j;
      for (x = 0; x < 5; x++) C.push(s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20]);
      for (x = 0; x < 5; x++) D.push(C[(x + 4) % 5] ^ rol(C[(x + 1) % 5], 1));
      for (j = 0; j < 25; j++) s[j] ^= D[j % 5];
      x = 1; y = 0;
      var current = s[1];
      for (var t = 0; t < 24; t++) {
        var nx = y, ny = (2 * x + 3 * y) % 5;
        x = nx; y = ny;
        var keep = s[x + 5 * y];
        s[x + 5 * y] = rol(current, RHO[t]);
        current = keep;
      }
      for (y = 0; y < 5; y++) {
        var T = s.slice(5 * y, 5 * y + 5);
        for (x = 0; x < 5; x++) s[x + 5 * y] = T[x] ^ ((T[(x + 1) % 5] ^ MASK64) & T[(x + 2) % 5]);
      }
      for (j = 0; j < 7; j++) {
        R = ((R << 1) ^ ((R >> 7) * 0x71)) % 256;
        if (R & 2) s[0] ^= 1n << BigInt((1 << j) - 1);
      }
    }
  }

  /* SHA3-512 of the UTF-8 text, lowercase hex (spec 3.3, E2 hash). */
  function sha3_512(text) {
    var rate = 72;
    var bytes = new TextEncoder().encode(text);
    var padded = new Uint8Array(Math.floor(bytes.length / rate) * rate + rate);
    padded.set(bytes);
    padded[bytes.length] ^= 0x06;
    padded[padded.length - 1] ^= 0x80;
    var s = [];
    for (var i = 0; i < 25; i++) s.push(0n);
    for (var off = 0; off < padded.length; off += rate) {
      for (var l = 0; l < rate / 8; l++) {
        var lane = 0n;
        for (var b = 7; b >= 0; b--) lane = (lane << 8n) | BigInt(padded[off + 8 * l + b]);
        s[l] ^= lane;
      }
      keccakF(s);
    }
    var hex = "";
    for (var k = 0; k < 8; k++) {
      for (var c = 0; c < 8; c++) hex += Number((s[k] >> BigInt(8 * c)) & 0xffn).toString(16).padStart(2, "0");
    }
    return hex;
  }

  function base64Json(value) {
    var bytes = new TextEncoder().encode(JSON.stringify(value));
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin);
  }

  /* The proof token for a requirements answer's seed and difficulty (spec 3.3). */
  function solveProof(seed, difficulty, algorithm, config) {
    var hash = algorithm === "fnv" ? fnv1a : sha3_512;
    var suffix = algorithm === "fnv" ? "~S" : "";
    var cfg = config.slice();
    var start = Date.now();
    for (var nonce = 0; nonce < 500000; nonce++) {
      cfg[3] = nonce;
      cfg[9] = Date.now() - start;
      var enc = base64Json(cfg);
      if (hash(seed + enc).slice(0, difficulty.length) <= difficulty) return "gAAAAAB" + enc + suffix;
    }
    return "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4D" + base64Json(String(seed)) + suffix;
  }

  function uuid4() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /* Incremental SSE reader: feed() text pieces, get back the data payloads completed so far. */
  function SseParser() {
    this.buffer = "";
  }
  SseParser.prototype.feed = function (text) {
    this.buffer += text;
    var out = [];
    var m;
    while ((m = /\r?\n\r?\n/.exec(this.buffer)) !== null) {
      var block = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      });
      if (data.length) out.push(data.join("\n"));
    }
    return out;
  };

  /* Legacy snapshot record → {text, messageId} of a visible assistant message, else null. */
  function assistantText(record) {
    var msg = record && record.message;
    if (!msg || !msg.author || msg.author.role !== "assistant") return null;
    if (msg.recipient && msg.recipient !== "all") return null;
    var content = msg.content || {};
    if (content.content_type !== "text" || !Array.isArray(content.parts)) return null;
    var first = content.parts[0];
    return { text: typeof first === "string" ? first : "", messageId: msg.id };
  }

  function browserConfig(base) {
    var scripts = Array.prototype.map.call(document.scripts || [], function (s) { return s.src; }).filter(Boolean);
    return [
      (screen.width || 1920) + (screen.height || 1080), String(new Date()), 4294705152, 1,
      navigator.userAgent, scripts[0] || base + "/assets/app.js",
      document.documentElement.getAttribute("data-build"), navigator.language || "en-US",
      (navigator.languages || ["en-US"]).join(","), 0, "webdriver\u2212false", "location",
      "onfocus", Math.round(performance.now() * 10) / 10, uuid4(), "",
      navigator.hardwareConcurrency || 8, performance.timeOrigin,
    ];
  }

  async function errorText(response) {
    var text = "HTTP " + response.status;
    try {
      var detail = (await response.json()).detail;
      if (typeof detail === "string") return text + ": " + detail;
      if (detail && (detail.message || detail.code)) return text + ": " + (detail.message || detail.code);
    } catch (e) { /* not JSON: the status says enough */ }
    return text;
  }

  /* One send: requirements, proof, conversation; onText(textSoFar, record) per assistant snapshot.
   * Resolves to {conversationId, messageId, text}; rejects with an Error whose message is shown. */
  async function send(opts) {
    var base = opts.base || "";
    var headers = {
      "Authorization": "Bearer " + opts.accessToken,
      "Content-Type": "application/json",
      "OAI-Device-Id": opts.deviceId,
      "OAI-Language": "en-US",
    };
    var req = await fetch(base + "/backend-api/sentinel/chat-requirements", {
      method: "POST", headers: headers, body: JSON.stringify({ p: "gAAAAAC" + base64Json(opts.config) }),
    });
    if (!req.ok) throw new Error(await errorText(req));
    var answer = await req.json();
    var convHeaders = Object.assign({}, headers, {
      "Accept": "text/event-stream",
      "OpenAI-Sentinel-Chat-Requirements-Token": answer.token,
    });
    var pow = answer.proofofwork || {};
    if (pow.required) {
      convHeaders["OpenAI-Sentinel-Proof-Token"] = solveProof(pow.seed, pow.difficulty, opts.powHash, opts.config);
    }
    var body = {
      action: "next",
      messages: [{
        id: uuid4(), author: { role: "user" },
        content: { content_type: "text", parts: [opts.prompt] }, metadata: {},
      }],
      conversation_mode: { kind: "primary_assistant" },
      model: opts.model || "auto",
      parent_message_id: uuid4(),
      timezone_offset_min: new Date().getTimezoneOffset(),
      history_and_training_disabled: false,
      force_use_sse: true,
      supported_encodings: [],
      suggestions: [],
      websocket_request_id: uuid4(),
    };
    var conv = await fetch(base + "/backend-api/conversation", {
      method: "POST", headers: convHeaders, body: JSON.stringify(body),
    });
    if (!conv.ok) throw new Error(await errorText(conv));
    var reader = conv.body.getReader();
    var decoder = new TextDecoder();
    var parser = new SseParser();
    var result = { conversationId: null, messageId: null, text: "" };
    for (;;) {
      var chunk = await reader.read();
      var payloads = parser.feed(chunk.done ? decoder.decode() + "\n\n" : decoder.decode(chunk.value, { stream: true }));
      for (var i = 0; i < payloads.length; i++) {
        if (payloads[i] === "[DONE]") {
          reader.cancel().catch(function () {});
          return result;
        }
        var record;
        try { record = JSON.parse(payloads[i]); } catch (e) { continue; }
        if (record && record.error && !record.message) throw new Error(String(record.error));
        if (record && record.conversation_id) result.conversationId = record.conversation_id;
        var seen = assistantText(record);
        if (seen) {
          result.text = seen.text;
          result.messageId = seen.messageId;
          if (opts.onText) opts.onText(seen.text, record);
        }
      }
      if (chunk.done) throw new Error("stream ended before [DONE]");
    }
  }

  function deviceId() {
    try {
      var id = localStorage.getItem("oai-device-id");
      if (!id) {
        id = uuid4();
        localStorage.setItem("oai-device-id", id);
      }
      return id;
    } catch (e) {
      return uuid4();
    }
  }

  function start() {
    var $ = function (id) { return document.getElementById(id); };
    var status = function (text) { $("status").textContent = text; };
    var meta = document.querySelector('meta[name="sim-pow-hash"]');
    var powHash = meta ? meta.getAttribute("content") : "sha3";
    var accessToken = null;

    fetch("/api/auth/session", { credentials: "include" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (session) {
        var user = session.user || {};
        $("user-name").textContent = user.name || user.email || "";
        accessToken = session.accessToken || null;
        if (accessToken) $("send").disabled = false;
        else status("error: not signed in");
      })
      .catch(function (e) { status("error: " + e.message); });

    $("send").addEventListener("click", function () {
      if (!accessToken) return;
      var answer = $("answer");
      answer.textContent = "";
      $("send").disabled = true;
      status("sending");
      send({
        accessToken: accessToken, prompt: $("prompt").value, deviceId: deviceId(),
        powHash: powHash, config: browserConfig(location.origin),
        onText: function (text) { answer.textContent = text; },
      }).then(function (result) {
        answer.dataset.conversationId = result.conversationId || "";
        answer.dataset.messageId = result.messageId || "";
        status("done");
      }, function (e) {
        status("error: " + (e && e.message ? e.message : String(e)));
      }).finally(function () { $("send").disabled = false; });
    });
  }

  var api = { fnv1a: fnv1a, sha3_512: sha3_512, solveProof: solveProof, SseParser: SseParser,
              assistantText: assistantText, send: send, uuid4: uuid4, base64Json: base64Json };
  if (typeof module === "object" && module.exports) module.exports = api;
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
