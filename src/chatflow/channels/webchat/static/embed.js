// chatflow web chat for your site. Paste where the chat should be offered:
//
//   <script src="https://YOUR-CHATFLOW-HOST/chat/YOUR-KEY/embed.js" async></script>
//
// It adds a chat button in a corner; the button opens the chat page in a frame. Optional
// attributes on the script tag: data-label="Chat with us" (the button's text) and
// data-position="left" (the bottom-left corner instead of the bottom-right).
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src) return;
  var pageUrl = script.src.replace(/\/embed\.js(?:[?#].*)?$/, "");
  var pageOrigin = new URL(pageUrl, window.location.href).origin;
  var registry = (window.__chatflowWebchat = window.__chatflowWebchat || {});
  if (registry[pageUrl]) return; // pasted twice: one button
  registry[pageUrl] = true;

  var label = script.getAttribute("data-label") || "Chat with us";
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";
  var frameId = "chatflow-webchat-" + Object.keys(registry).length;
  var small = window.matchMedia("(max-width: 480px)");

  // Styles are set through the DOM, not a <style> element: a host page's Content-Security-Policy
  // may forbid inline style sheets but not this.
  function css(node, rules) {
    for (var name in rules) node.style.setProperty(name, rules[name], "important");
  }

  function start() {
    var button = document.createElement("button");
    var frame = null;
    var open = false;

    button.type = "button";
    button.textContent = label;
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", frameId);
    button.setAttribute("data-chatflow-webchat", "button");
    css(button, {
      position: "fixed",
      bottom: "20px",
      [side]: "20px",
      "z-index": "2147483000",
      padding: "12px 20px",
      border: "0",
      "border-radius": "999px",
      background: "#1f5fbf",
      color: "#fff",
      font: "600 16px/1.2 system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
      "box-shadow": "0 4px 16px rgba(0, 0, 0, 0.25)",
      cursor: "pointer",
    });

    function place() {
      if (!frame) return;
      var full = small.matches;
      css(frame, {
        position: "fixed",
        "z-index": "2147483001",
        border: "0",
        background: "#fff",
        "box-shadow": "0 8px 32px rgba(0, 0, 0, 0.3)",
        display: open ? "block" : "none",
        bottom: full ? "0" : "84px",
        [side]: full ? "0" : "20px",
        width: full ? "100%" : "370px",
        height: full ? "100%" : "min(600px, calc(100vh - 110px))",
        "border-radius": full ? "0" : "12px",
      });
    }

    function show() {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.id = frameId;
        frame.src = pageUrl;
        frame.title = label;
        frame.setAttribute("data-chatflow-webchat", "frame");
        frame.setAttribute("allow", "clipboard-write");
        document.body.appendChild(frame);
      }
      open = true;
      place();
      button.setAttribute("aria-expanded", "true");
      frame.focus();
    }

    function hide() {
      open = false;
      place();
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }

    button.addEventListener("click", function () {
      if (open) hide();
      else show();
    });
    document.addEventListener("keydown", function (event) {
      if (open && event.key === "Escape") hide();
    });
    window.addEventListener("message", function (event) {
      // Only the chat page in our own frame may close it.
      if (!frame || event.source !== frame.contentWindow || event.origin !== pageOrigin) return;
      if (event.data && event.data.type === "chatflow:webchat:close") hide();
    });
    if (small.addEventListener) small.addEventListener("change", place);
    document.body.appendChild(button);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
