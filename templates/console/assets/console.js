// The console's own script: each Teams card preview is drawn by Microsoft's Adaptive Cards renderer (served by
// Budkavle from the pinned npm package), also in the parts htmx puts in place after the page has loaded.
(function () {
  "use strict";
  function render(root) {
    if (typeof AdaptiveCards === "undefined") { return; }
    root.querySelectorAll("[data-card]").forEach(function (holder) {
      if (holder.dataset.rendered === "true") { return; }
      var card = new AdaptiveCards.AdaptiveCard();
      card.onExecuteAction = function () {};  // a preview's buttons lead nowhere
      card.parse(JSON.parse(holder.dataset.card));
      var drawn = card.render();
      if (drawn) {
        holder.replaceChildren(drawn);
        holder.dataset.rendered = "true";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSettle", function (event) { render(event.target); });
})();
