// The auditor's pages: the citizen's report's "Print" button (shown only when scripts run;
// without them the browser's own print does the same).
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
});
