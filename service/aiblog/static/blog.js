// Asks before a form marked data-confirm is sent (the delete button). Kept out
// of the markup: the Content-Security-Policy refuses inline event handlers.
document.addEventListener("submit", function (event) {
  "use strict";
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
