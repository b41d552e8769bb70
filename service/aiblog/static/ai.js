// Streams a generation into the page as Server-Sent Events arrive, so the
// first words show up while the model is still writing. Without JavaScript
// the form posts normally and the server renders the finished post.
(function () {
  "use strict";
  const form = document.getElementById("generate-form");
  if (!form || !window.fetch || !window.TextDecoder) return;
  const output = document.getElementById("ai-output");
  const status = document.getElementById("ai-status");
  const button = document.getElementById("generate-button");
  const saveForm = document.getElementById("save-form");

  function handle(name, data) {
    if (name === "meta") {
      status.textContent = data.cached ? "From the cache." : "Writing…";
    } else if (name === "token") {
      output.textContent += data.text;
    } else if (name === "done") {
      output.classList.remove("streaming");
      output.innerHTML = data.html; // sanitized on the server
      document.getElementById("save-title").value = data.title;
      document.getElementById("save-body").value = data.content;
      saveForm.hidden = false;
      status.textContent = data.cached ? "From the cache." : "Done.";
    } else if (name === "error") {
      status.textContent = "Error: " + data.message;
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    output.hidden = false;
    output.classList.add("streaming");
    output.textContent = "";
    saveForm.hidden = true;
    button.disabled = true;
    status.textContent = "Waiting for the model…";
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form),
        headers: {"Accept": "text/event-stream"}, credentials: "same-origin",
      });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.startsWith("text/event-stream")) {
        let message = response.status + " " + response.statusText;
        try { message = (await response.json()).message || message; } catch (e) { /* not JSON */ }
        status.textContent = "Error: " + message;
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) handle(name, JSON.parse(data));
        }
      }
    } catch (error) {
      status.textContent = "Error: " + error.message;
    } finally {
      button.disabled = false;
    }
  });
})();
