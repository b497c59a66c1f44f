// argspec.js - the catalogue's argument specs (iot-protocol(7), CONTRACT: "name:kind[?]"
// space-separated, kinds int uint float bool str hex, optional ones last), and the checks
// iotd applies to each value, done here before a command is sent.

export const NUMERIC = new Set(["int", "uint", "float"]);

/** Parse "x:int y:int color:str?" into [{name, kind, optional}]. */
export function parseArgspec(text) {
  const args = [];
  for (const token of (text || "").split(" ")) {
    if (!token) continue;
    const colon = token.indexOf(":");
    if (colon < 1) continue;
    let kind = token.slice(colon + 1);
    const optional = kind.endsWith("?");
    if (optional) kind = kind.slice(0, -1);
    args.push({ name: token.slice(0, colon), kind, optional });
  }
  return args;
}

const checks = {
  int: (v) => /^-?[0-9]{1,19}$/.test(v) || "a whole number, such as 42 or -7",
  uint: (v) => /^[0-9]{1,19}$/.test(v) || "a whole number of 0 or more, such as 42",
  float: (v) =>
    (/^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(v) && Number.isFinite(Number(v))) ||
    "a number, such as 21.5",
  bool: (v) => ["true", "false", "1", "0"].includes(v) || "true or false",
  hex: (v) => (/^(?:[0-9a-fA-F]{2})+$/.test(v)) || "hex digits in pairs, such as 0aff",
  str: () => true,
};

/** The problem with one value (a sentence for people), or null when iotd would take it. */
export function checkValue(kind, value) {
  const check = checks[kind] || checks.str;
  const r = check(value);
  return r === true ? null : `must be ${r}`;
}

/**
 * The positional arguments from the form's values (one per spec entry, "" when left empty):
 * {args} or {errors: {name: message}}.
 */
export function buildArgs(spec, values) {
  const errors = {};
  let last = -1;
  spec.forEach((a, i) => {
    if (values[i] !== "") last = i;
  });
  spec.forEach((a, i) => {
    const v = values[i];
    if (v === "") {
      if (!a.optional) errors[a.name] = "is required";
      else if (i < last) errors[a.name] = "must be given when a later argument is";
      return;
    }
    const problem = checkValue(a.kind, v);
    if (problem) errors[a.name] = problem;
  });
  if (Object.keys(errors).length) return { errors };
  return { args: values.slice(0, last + 1) };
}
