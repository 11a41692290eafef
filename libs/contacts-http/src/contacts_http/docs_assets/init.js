// Starts Swagger UI on /docs (contacts_http.docs). A file of its own, not an inline script, so
// the page's Content-Security-Policy can allow scripts from this origin only.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
  });
});
