// throw: an exception nobody catches.
print("throwing");
function fail() { throw new Error("boom"); }
fail();
print("not reached");
