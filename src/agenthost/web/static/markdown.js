// A small Markdown renderer for agent answers. It builds DOM nodes and sets only text,
// never HTML, so whatever a model writes (tags, scripts, event handlers) stays text;
// links are made only for http(s) and mailto URLs.
// Blocks: paragraphs (a single newline is a line break), fenced code, headings, lists,
// block quotes, rules. Inline: code, bold, italics, links, bare URLs.
"use strict";

(function () {
  const SAFE_URL = /^(https?:\/\/|mailto:)/i;
  const INLINE = new RegExp(
    [
      "(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)", // 1, 2: code
      "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*", // 3: bold
      "__(?=\\S)([\\s\\S]*?\\S)__", // 4: bold
      "\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*", // 5: italics
      "\\b_(?=[^\\s_])([\\s\\S]*?[^\\s_])_\\b", // 6: italics
      "\\[([^\\]\\n]+)\\]\\(([^)\\s]+)\\)", // 7, 8: link
      "(https?:\\/\\/[^\\s<>()]+[^\\s<>().,;:!?'\"])", // 9: bare URL
    ].join("|"),
    "g",
  );

  function element(tag, text) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(label, url) {
    if (!SAFE_URL.test(url)) return document.createTextNode(label);
    const anchor = element("a");
    anchor.href = url;
    anchor.rel = "noopener noreferrer nofollow";
    anchor.target = "_blank";
    inline(label, anchor);
    return anchor;
  }

  function inline(text, parent) {
    const pattern = new RegExp(INLINE.source, "g");
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) parent.append(text.slice(last, match.index));
      if (match[1]) {
        parent.append(element("code", match[2].replace(/^ (.*) $/, "$1")));
      } else if (match[3] !== undefined || match[4] !== undefined) {
        const strong = element("strong");
        inline(match[3] !== undefined ? match[3] : match[4], strong);
        parent.append(strong);
      } else if (match[5] !== undefined || match[6] !== undefined) {
        const em = element("em");
        inline(match[5] !== undefined ? match[5] : match[6], em);
        parent.append(em);
      } else if (match[7] !== undefined) {
        parent.append(link(match[7], match[8]));
      } else {
        parent.append(link(match[9], match[9]));
      }
      last = pattern.lastIndex;
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  function withBreaks(lines, parent) {
    lines.forEach((line, index) => {
      if (index) parent.append(element("br"));
      inline(line, parent);
    });
  }

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
  const QUOTE = /^\s{0,3}>\s?(.*)$/;
  const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;

  function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
      BULLET.test(line) || NUMBERED.test(line);
  }

  function blocks(lines, parent, depth) {
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let match;
      if (!line.trim()) {
        i += 1;
      } else if ((match = FENCE.exec(line))) {
        const fence = match[1];
        const body = [];
        i += 1;
        while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
        i += 1; // the closing fence (or the end of an unfinished, still streaming, block)
        const pre = element("pre");
        const code = element("code", body.join("\n"));
        if (match[2]) code.dataset.language = match[2];
        pre.append(code);
        parent.append(pre);
      } else if ((match = HEADING.exec(line))) {
        // h1/h2 belong to the page: an answer's headings start at h3.
        const heading = element("h" + Math.min(6, match[1].length + 2));
        inline(match[2], heading);
        parent.append(heading);
        i += 1;
      } else if (RULE.test(line)) {
        parent.append(element("hr"));
        i += 1;
      } else if (QUOTE.test(line)) {
        const quoted = [];
        while (i < lines.length && (match = QUOTE.exec(lines[i]))) { quoted.push(match[1]); i += 1; }
        const quote = element("blockquote");
        if (depth < 8) blocks(quoted, quote, depth + 1); else quote.textContent = quoted.join("\n");
        parent.append(quote);
      } else if (BULLET.test(line) || NUMBERED.test(line)) {
        const numbered = NUMBERED.test(line);
        const itemPattern = numbered ? NUMBERED : BULLET;
        const list = element(numbered ? "ol" : "ul");
        if (numbered) {
          const first = Number(NUMBERED.exec(line)[1]);
          if (first !== 1) list.start = first;
        }
        while (i < lines.length && (match = itemPattern.exec(lines[i]))) {
          const item = element("li");
          const text = [numbered ? match[2] : match[1]];
          i += 1;
          // Indented lines continue the item.
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !itemPattern.test(lines[i])) {
            text.push(lines[i].trim());
            i += 1;
          }
          withBreaks(text, item);
          list.append(item);
        }
        parent.append(list);
      } else {
        const paragraph = [];
        while (i < lines.length && lines[i].trim() && (!paragraph.length || !startsBlock(lines[i]))) {
          paragraph.push(lines[i]);
          i += 1;
        }
        const p = element("p");
        withBreaks(paragraph, p);
        parent.append(p);
      }
    }
  }

  function render(source) {
    const fragment = document.createDocumentFragment();
    blocks(String(source || "").replace(/\r\n?/g, "\n").split("\n"), fragment, 0);
    return fragment;
  }

  window.agenthostMarkdown = { render };
})();
