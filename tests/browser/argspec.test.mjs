// argspec.test.mjs - the console's argument checks (web/modules/argspec.js) against the rules
// iotd applies (iotd/registry/argspec.c value_ok): what a form refuses before sending.
import test from "node:test";
import assert from "node:assert/strict";
import { parseArgspec, checkValue, buildArgs } from "../../web/modules/argspec.js";

test("specs parse into name, kind and optional", () => {
  assert.deepEqual(parseArgspec("x:int y:uint? "), [
    { name: "x", kind: "int", optional: false },
    { name: "y", kind: "uint", optional: true },
  ]);
  assert.deepEqual(parseArgspec(""), []);
  assert.deepEqual(parseArgspec(undefined), []);
});

test("each kind takes what iotd takes and refuses the rest", () => {
  const cases = {
    int: [["42", "-7", "0", "1234567890123456789"], ["1.5", "", "+1", "1e3", " 1", "12345678901234567890", "-"]],
    uint: [["0", "42"], ["-1", "1.0", "x"]],
    float: [["21.5", "-0.5", "1e3", "3", ".5", "5."], ["", "abc", "1.2.3", " 1", "Infinity", "NaN", "1e999"]],
    bool: [["true", "false", "1", "0"], ["yes", "True", ""]],
    hex: [["00", "0aFF", "deadbeef"], ["0", "abc", "zz", ""]],
    str: [["", "anything at all"], []],
  };
  for (const [kind, [good, bad]] of Object.entries(cases)) {
    for (const v of good) assert.equal(checkValue(kind, v), null, `${kind} ${JSON.stringify(v)}`);
    for (const v of bad) assert.match(checkValue(kind, v) || "", /^must be/, `${kind} ${JSON.stringify(v)}`);
  }
});

test("a form's values become positional args, optional ones last and without gaps", () => {
  const spec = parseArgspec("x:int y:int? color:str?");
  assert.deepEqual(buildArgs(spec, ["1", "", ""]), { args: ["1"] });
  assert.deepEqual(buildArgs(spec, ["1", "2", "red"]), { args: ["1", "2", "red"] });
  assert.deepEqual(buildArgs(spec, ["", "", ""]).errors, { x: "is required" });
  assert.match(buildArgs(spec, ["1", "", "red"]).errors.y, /later argument/);
  assert.match(buildArgs(spec, ["1.5", "2", ""]).errors.x, /whole number/);
});
