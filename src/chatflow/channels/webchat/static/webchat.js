// The web-chat page: start a conversation, show it, keep it live, send and tap.
//
// The visitor's token is kept in localStorage, so a reload (or a later visit) continues the same
// conversation. Messages come over a WebSocket that resumes from the last cursor it received, so
// a dropped connection loses nothing; messages being sent are retried with the same client_id,
// which the server uses to keep one copy.
(function () {
  "use strict";

  const settings = JSON.parse(document.getElementById("webchat-settings").textContent);
  const base = "/chat/" + encodeURIComponent(settings.key);
  const storageKey = "chatflow.webchat." + settings.key;
  const HEARTBEAT_GRACE_MS = 60000;
  const MAX_RETRY_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const els = {
    status: $("chat-status"),
    close: $("chat-close"),
    body: document.querySelector(".chat-body"),
    welcome: $("chat-welcome"),
    startForm: $("start-form"),
    startName: $("start-name"),
    startEmail: $("start-email"),
    startButton: $("start-button"),
    startError: $("start-error"),
    conversation: $("conversation"),
    loadEarlier: $("load-earlier"),
    list: $("messages"),
    composer: $("composer"),
    text: $("composer-text"),
    sendError: $("send-error"),
  };

  const state = {
    token: null,
    cursor: null,
    socket: null,
    retries: 0,
    reconnectTimer: null,
    watchdog: null,
    earlierBefore: null,
    messages: new Map(), // id -> message
    elements: new Map(), // id -> <li>
    tapped: new Set(), // ids of template messages already answered with a tap
    outbox: [],
    sending: false,
  };

  // -- storage (an in-memory fallback where the browser refuses storage to frames) -----------

  const memory = new Map();
  function loadSaved() {
    try {
      return JSON.parse(window.localStorage.getItem(storageKey) || "null");
    } catch (error) {
      return memory.get(storageKey) || null;
    }
  }
  function save(value) {
    memory.set(storageKey, value);
    try {
      window.localStorage.setItem(storageKey, JSON.stringify(value));
    } catch (error) {
      // Kept in memory for this visit only.
    }
  }
  function forget() {
    memory.delete(storageKey);
    try {
      window.localStorage.removeItem(storageKey);
    } catch (error) {
      // Nothing stored.
    }
  }

  // -- HTTP ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || "The request failed (" + status + ")");
      this.status = status;
      this.problem = problem;
    }
    get retryable() {
      return this.status === 0 || this.status === 429 || this.status >= 500;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = "Bearer " + state.token;
    let response;
    try {
      response = await fetch(base + path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, { detail: "You seem to be offline." });
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function newClientId() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // -- what is shown -------------------------------------------------------------------------

  function setStatus(text) {
    els.status.textContent = text;
  }

  function nearBottom() {
    const body = els.body;
    return body.scrollHeight - body.scrollTop - body.clientHeight < 80;
  }

  function scrollToBottom() {
    els.body.scrollTop = els.body.scrollHeight;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function timeOf(iso) {
    const moment = new Date(iso);
    const time = element("time", "meta-time", moment.toLocaleTimeString([], {
      hour: "2-digit",
      minute: "2-digit",
    }));
    time.dateTime = iso;
    time.title = moment.toLocaleString();
    return time;
  }

  function safeUrl(url) {
    return /^https?:\/\//i.test(url || "") ? url : null;
  }

  function templateBlock(message) {
    const template = message.template;
    const block = element("div", "template");
    const header = template.header;
    if (header && header.format === "TEXT" && header.text) {
      block.appendChild(element("p", "template-header", header.text));
    }
    block.appendChild(element("p", "template-body", template.body));
    if (template.footer) block.appendChild(element("p", "template-footer", template.footer));
    if (template.buttons.length) {
      const group = element("div", "template-buttons");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Replies");
      for (const button of template.buttons) {
        group.appendChild(templateButton(message, button));
      }
      block.appendChild(group);
    }
    return block;
  }

  function templateButton(message, button) {
    const url = safeUrl(button.url);
    if (button.type === "URL" && url) {
      const link = element("a", "template-button template-link", button.text);
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      return link;
    }
    if (button.type === "PHONE_NUMBER" && button.phone_number) {
      const link = element("a", "template-button template-link", button.text);
      link.href = "tel:" + button.phone_number.replace(/[^+0-9]/g, "");
      return link;
    }
    const node = element("button", "template-button", button.text);
    node.type = "button";
    if (button.type === "COPY_CODE") {
      node.addEventListener("click", () => {
        if (navigator.clipboard && button.code) navigator.clipboard.writeText(button.code);
        setStatus("Code copied.");
      });
      return node;
    }
    if (button.type !== "QUICK_REPLY") {
      node.disabled = true;
      return node;
    }
    node.dataset.quickReply = String(button.index);
    node.disabled = state.tapped.has(message.id);
    node.addEventListener("click", () => tap(message, button));
    return node;
  }

  function bubbleFor(message) {
    const business = message.direction === "outbound";
    const item = element("li", "message " + (business ? "message--business" : "message--customer"));
    item.dataset.id = message.id;
    item.dataset.kind = message.kind;
    const bubble = element("div", "bubble");
    if (business) {
      const who = message.sender.name || settings.title;
      bubble.appendChild(element("p", "sender", who));
    } else {
      bubble.appendChild(element("span", "visually-hidden", "You: "));
    }
    if (message.kind === "template" && message.template) {
      bubble.appendChild(templateBlock(message));
    } else {
      bubble.appendChild(element("p", "text", message.text));
    }
    const meta = element("p", "meta");
    meta.appendChild(timeOf(message.created_at));
    if (message.status === "failed") meta.appendChild(element("span", "meta-failed", " · Not delivered"));
    bubble.appendChild(meta);
    item.appendChild(bubble);
    return item;
  }

  function disableTemplate(templateId) {
    state.tapped.add(templateId);
    const item = state.elements.get(templateId);
    if (!item) return;
    for (const node of item.querySelectorAll("button[data-quick-reply]")) node.disabled = true;
  }

  function upsert(message) {
    const stick = nearBottom();
    state.messages.set(message.id, message);
    if (message.kind === "button_reply" && message.button && message.button.template_message_id) {
      disableTemplate(message.button.template_message_id);
    }
    const fresh = bubbleFor(message);
    const existing = state.elements.get(message.id);
    if (existing) {
      existing.replaceWith(fresh);
    } else {
      // Ids sort by creation: keep the list in that order whatever order messages arrive in.
      // Messages still being sent stay last.
      const next = Array.from(els.list.children).find(
        (node) => node.classList.contains("message--pending") || node.dataset.id > message.id
      );
      els.list.insertBefore(fresh, next || null);
    }
    state.elements.set(message.id, fresh);
    if (stick) scrollToBottom();
  }

  // -- starting, history ---------------------------------------------------------------------

  function showStart() {
    els.startForm.hidden = false;
    els.conversation.hidden = true;
    els.composer.hidden = true;
    setStatus("");
    els.startName.focus();
  }

  function showConversation() {
    els.startForm.hidden = true;
    els.conversation.hidden = false;
    els.composer.hidden = false;
  }

  function reset() {
    forget();
    state.token = null;
    state.cursor = null;
    stopSocket();
    state.messages.clear();
    state.elements.clear();
    state.tapped.clear();
    state.outbox = [];
    els.list.replaceChildren();
    showStart();
  }

  async function startConversation(event) {
    event.preventDefault();
    els.startError.textContent = "";
    const body = {};
    const name = els.startName.value.trim();
    const email = els.startEmail.value.trim();
    if (name) body.name = name;
    if (email) body.email = email;
    els.startButton.disabled = true;
    try {
      const started = await api("POST", "/visitors", body);
      state.token = started.token;
      save({ token: started.token });
      await enter();
      els.text.focus();
    } catch (error) {
      els.startError.textContent = error.message;
    } finally {
      els.startButton.disabled = false;
    }
  }

  async function loadHistory(before) {
    const query = "?limit=50" + (before ? "&before=" + encodeURIComponent(before) : "");
    const page = await api("GET", "/messages" + query);
    if (!before && state.cursor === null) state.cursor = page.stream_cursor;
    for (const message of page.data) upsert(message);
    state.earlierBefore = page.next_before;
    els.loadEarlier.hidden = !page.next_before;
    return page;
  }

  async function enter() {
    showConversation();
    try {
      await loadHistory(null);
      scrollToBottom();
    } catch (error) {
      if (error.status === 401 || error.status === 404) {
        handleGone(error.status);
        return;
      }
      setStatus("Could not load the conversation; trying again…");
      scheduleReconnect(enter);
      return;
    }
    connect();
  }

  function handleGone(status) {
    if (status === 404) {
      stopSocket();
      setStatus("This chat is not available.");
      els.composer.hidden = true;
      return;
    }
    reset();
  }

  async function showEarlier() {
    if (!state.earlierBefore) return;
    const body = els.body;
    const fromBottom = body.scrollHeight - body.scrollTop;
    els.loadEarlier.disabled = true;
    try {
      await loadHistory(state.earlierBefore);
      body.scrollTop = body.scrollHeight - fromBottom;
    } catch (error) {
      setStatus(error.message);
    } finally {
      els.loadEarlier.disabled = false;
    }
  }

  // -- the live stream -----------------------------------------------------------------------

  function stopSocket() {
    window.clearTimeout(state.reconnectTimer);
    window.clearTimeout(state.watchdog);
    const socket = state.socket;
    state.socket = null;
    if (socket) socket.close(1000);
  }

  function armWatchdog(socket) {
    window.clearTimeout(state.watchdog);
    // Heartbeats come every 20 s by default: silence for longer means a dead connection.
    state.watchdog = window.setTimeout(() => {
      if (state.socket === socket) socket.close(4000, "No heartbeat");
    }, HEARTBEAT_GRACE_MS);
  }

  function scheduleReconnect(then) {
    window.clearTimeout(state.reconnectTimer);
    const delay = Math.min(MAX_RETRY_MS, 500 * 2 ** state.retries) * (0.5 + Math.random() / 2);
    state.retries += 1;
    state.reconnectTimer = window.setTimeout(then || connect, delay);
  }

  function connect() {
    if (!state.token) return;
    window.clearTimeout(state.reconnectTimer);
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + base + "/stream");
    state.socket = socket;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "auth", token: state.token, after: state.cursor }));
      armWatchdog(socket);
    });
    socket.addEventListener("message", (event) => {
      if (state.socket !== socket) return;
      armWatchdog(socket);
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame.type === "message") upsert(frame.message);
      if (frame.type === "ready") {
        state.retries = 0;
        setStatus("");
        document.documentElement.dataset.live = "true";
      }
      // After the frame is handled: a reconnect resumes after what was shown, not before.
      if (frame.cursor) state.cursor = frame.cursor;
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      window.clearTimeout(state.watchdog);
      document.documentElement.dataset.live = "false";
      if (event.code === 4401) {
        reset();
      } else if (event.code === 4404) {
        handleGone(404);
      } else if (event.code === 4400) {
        // A cursor the server does not know: start again from the conversation as it is now.
        state.cursor = null;
        setStatus("Reconnecting…");
        scheduleReconnect(enter);
      } else {
        setStatus("Reconnecting…");
        scheduleReconnect(connect);
      }
    });
  }

  function reconnectNow() {
    if (state.token && !state.socket) {
      state.retries = 0;
      connect();
    }
  }

  // -- sending -------------------------------------------------------------------------------

  function pendingBubble(text) {
    const item = element("li", "message message--customer message--pending");
    const bubble = element("div", "bubble");
    bubble.appendChild(element("p", "text", text));
    bubble.appendChild(element("p", "meta", "Sending…"));
    item.appendChild(bubble);
    els.list.appendChild(item);
    scrollToBottom();
    return item;
  }

  function enqueue(body, pending, onRefused) {
    state.outbox.push({ body: body, pending: pending, onRefused: onRefused });
    flush();
  }

  async function flush() {
    if (state.sending) return;
    state.sending = true;
    try {
      while (state.outbox.length) {
        const entry = state.outbox[0];
        try {
          const message = await api("POST", "/messages", entry.body);
          if (entry.pending) entry.pending.remove();
          upsert(message);
          els.sendError.textContent = "";
          state.outbox.shift();
        } catch (error) {
          if (error.status === 401) {
            reset();
            return;
          }
          if (!error.retryable) {
            state.outbox.shift();
            if (entry.pending) entry.pending.remove();
            els.sendError.textContent = error.message;
            if (entry.onRefused) entry.onRefused();
            continue;
          }
          // The same client_id goes again: the server keeps one copy whatever happened.
          els.sendError.textContent = "Not sent yet; trying again…";
          await new Promise((resolve) => window.setTimeout(resolve, 1000 + Math.random() * 2000));
        }
      }
    } finally {
      state.sending = false;
    }
  }

  function send(event) {
    event.preventDefault();
    const text = els.text.value;
    if (!text.trim()) return;
    els.text.value = "";
    autoGrow();
    enqueue({ text: text, client_id: newClientId() }, pendingBubble(text), () => {
      if (!els.text.value) els.text.value = text;
    });
  }

  function tap(message, button) {
    if (state.tapped.has(message.id)) return;
    disableTemplate(message.id);
    enqueue(
      { button: { message_id: message.id, index: button.index }, client_id: newClientId() },
      pendingBubble(button.text),
      () => {
        state.tapped.delete(message.id);
        upsert(state.messages.get(message.id));
      }
    );
  }

  function autoGrow() {
    els.text.style.height = "auto";
    els.text.style.height = Math.min(els.text.scrollHeight, 160) + "px";
  }

  // -- wiring --------------------------------------------------------------------------------

  els.startForm.addEventListener("submit", startConversation);
  els.composer.addEventListener("submit", send);
  els.loadEarlier.addEventListener("click", showEarlier);
  els.text.addEventListener("input", autoGrow);
  els.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.composer.requestSubmit();
    }
  });
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });
  if (window.parent !== window) {
    els.close.hidden = false;
    els.close.addEventListener("click", () => {
      window.parent.postMessage({ type: "chatflow:webchat:close" }, "*");
    });
  }
  els.welcome.hidden = !settings.welcome_text;

  const saved = loadSaved();
  if (saved && saved.token) {
    state.token = saved.token;
    enter();
  } else {
    showStart();
  }
})();
