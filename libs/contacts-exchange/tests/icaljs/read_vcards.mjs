// Reads vCard text on stdin with ical.js and prints, per card, the values the Python test
// compares: a JSON array of {uid, fn, n, org, title, note, categories, adr}.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const parsed = ICAL.parse(readFileSync(0, "utf8"));
const roots = typeof parsed[0] === "string" ? [parsed] : parsed;
const all = (card, name) => card.getAllProperties(name).flatMap((p) => p.getValues());
const first = (card, name) => card.getFirstPropertyValue(name);
const cards = roots.map((jcal) => {
  const card = new ICAL.Component(jcal);
  return {
    uid: first(card, "uid"),
    fn: first(card, "fn"),
    n: first(card, "n"),
    org: first(card, "org"),
    title: first(card, "title"),
    note: first(card, "note"),
    categories: all(card, "categories"),
    adr: card.getAllProperties("adr").map((p) => p.getFirstValue()),
  };
});
process.stdout.write(JSON.stringify(cards));
