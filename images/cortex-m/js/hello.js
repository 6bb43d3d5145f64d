// hello: cold start. One line from the script; the firmware prints the
// PHASE lines around it.
print("hello from js");
