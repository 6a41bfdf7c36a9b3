// Getting an image in on `/`: paste an image or its address anywhere, drop files anywhere on the
// window, and buttons that open the file picker. Files are handed to the page's own upload inputs,
// so they take the same path (and the same checks) as a file chosen by hand; a pasted address goes
// through the "image URL" field, which the server fetches with the API's SSRF-safe fetcher.
(function () {
  "use strict";
  if (window.clearbgInput) return;
  window.clearbgInput = true;

  const singleInput = () => document.querySelector("#single-drop input[type=file]");
  const batchInput = () => document.querySelector(".batch-drop input[type=file]");
  const onBatchTab = () => document.querySelector("#batch-tab[data-state=active]") !== null;
  const signedIn = () => document.querySelector("#input-helpers[data-signed-in=yes]") !== null;
  const onHomePage = () => document.getElementById("single-drop") !== null;

  function give(input, files) {
    if (!input) return false;
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function whenPresent(find, then, tries = 40) {
    const found = find();
    if (found) then(found);
    else if (tries > 0) setTimeout(() => whenPresent(find, then, tries - 1), 50);
  }

  // Several files on "One photo": offer the batch (signed in) or say that it needs an account.
  let pending = [];
  function offerBatch(files) {
    pending = Array.from(files);
    closeOffer();
    const box = document.createElement("div");
    box.id = "multi-drop-offer";
    box.setAttribute("role", "dialog");
    box.style.cssText =
      "position:fixed;left:50%;bottom:1.5em;transform:translateX(-50%);z-index:1000;max-width:calc(100vw - 2em);" +
      "background:var(--color-panel-solid,#fff);border:1px solid var(--gray-7,#ccc);border-radius:12px;" +
      "padding:0.9em 1.1em;box-shadow:0 8px 30px rgba(0,0,0,.18);display:flex;gap:0.8em;align-items:center;flex-wrap:wrap;";
    const text = document.createElement("span");
    const count = pending.length;
    const buttonStyle =
      "font:inherit;padding:0.45em 0.9em;border-radius:8px;border:1px solid var(--accent-9,#3e63dd);cursor:pointer;";
    if (signedIn()) {
      text.textContent = count + " photos: one at a time here, or all at once in Batch.";
      const go = document.createElement("button");
      go.id = "multi-drop-batch";
      go.type = "button";
      go.textContent = "Process " + count + " in Batch";
      go.style.cssText = buttonStyle + "background:var(--accent-9,#3e63dd);color:#fff;";
      go.addEventListener("click", () => {
        const files = pending;
        closeOffer();
        const tab = document.getElementById("batch-tab");
        if (tab) {
          tab.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, button: 0 })); // Radix tabs switch on mousedown
          tab.focus();
        }
        whenPresent(batchInput, (input) => give(input, files));
      });
      box.append(text, go);
    } else {
      text.textContent =
        count + " photos: drop one at a time here. Processing many at once (Batch) needs an account.";
      const signIn = document.createElement("a");
      signIn.href = "/signup";
      signIn.id = "multi-drop-sign-up";
      signIn.textContent = "Create an account";
      box.append(text, signIn);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Cancel";
    close.style.cssText = buttonStyle + "background:transparent;";
    close.addEventListener("click", closeOffer);
    box.append(close);
    document.body.append(box);
  }
  function closeOffer() {
    const box = document.getElementById("multi-drop-offer");
    if (box) box.remove();
  }

  function route(files) {
    if (!files || files.length === 0) return;
    if (onBatchTab()) {
      if (!give(batchInput(), files)) offerBatch(files);
    } else if (files.length === 1) {
      give(singleInput(), files);
    } else {
      offerBatch(files);
    }
  }

  // A full-window drop overlay while files are dragged over the page.
  let overlay = null;
  let depth = 0;
  function showOverlay() {
    if (overlay) return;
    overlay = document.createElement("div");
    overlay.id = "drop-overlay";
    overlay.style.cssText =
      "position:fixed;inset:0;z-index:999;display:flex;align-items:center;justify-content:center;" +
      "background:rgba(30,40,90,.55);color:#fff;font-size:1.6em;font-weight:600;border:4px dashed #fff;";
    overlay.textContent = "Drop your photo anywhere";
    document.body.append(overlay);
  }
  function hideOverlay() {
    depth = 0;
    if (overlay) overlay.remove();
    overlay = null;
  }
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");

  window.addEventListener("dragenter", (event) => {
    if (!onHomePage() || !hasFiles(event)) return;
    depth += 1;
    showOverlay();
  });
  window.addEventListener("dragleave", () => {
    depth -= 1;
    if (depth <= 0) hideOverlay();
  });
  window.addEventListener("dragover", (event) => {
    if (onHomePage() && hasFiles(event)) event.preventDefault();
  });
  window.addEventListener(
    "drop",
    (event) => {
      if (!onHomePage() || !hasFiles(event)) return;
      event.preventDefault();
      event.stopPropagation();
      hideOverlay();
      route(event.dataTransfer.files);
    },
    true,
  );

  // Paste: an image (a screenshot, a copied file) or the address of one.
  document.addEventListener("paste", (event) => {
    if (!onHomePage() || !event.clipboardData) return;
    const editing = event.target instanceof HTMLElement && event.target.closest("input, textarea, [contenteditable]");
    const files = Array.from(event.clipboardData.files || []);
    if (files.length > 0) {
      event.preventDefault();
      route(files);
      return;
    }
    if (editing || onBatchTab()) return;
    const text = (event.clipboardData.getData("text/plain") || "").trim();
    if (!/^https?:\/\/\S+$/i.test(text)) return;
    const field = document.getElementById("image-url");
    const form = document.getElementById("url-form");
    if (!field || !form) return;
    event.preventDefault();
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(field, text);
    field.dispatchEvent(new Event("input", { bubbles: true }));
    form.requestSubmit();
  });

  // Buttons outside the drop zone that should open the file picker ("Remove another background").
  document.addEventListener("click", (event) => {
    const trigger = event.target instanceof HTMLElement && event.target.closest("#another-button");
    if (!trigger) return;
    const input = singleInput();
    if (input) input.click();
  });
})();
