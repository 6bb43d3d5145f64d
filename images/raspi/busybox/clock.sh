# Sourced by /init and /bin/supervise (busybox sh). `stamp` puts the guest
# time since the kernel started into $t_us and $t_ms: the "now at N nsecs"
# line of /proc/timer_list (the monotonic clock that Go's clock_gettime and
# Node's process.hrtime also read), read with shell builtins only, so taking
# a stamp forks nothing. Where the kernel has no timer_list, /proc/uptime
# (10 ms resolution).
stamp() {
  ns=
  if [ -r /proc/timer_list ]; then
    { read -r _; read -r _; read -r _ _ ns _; } < /proc/timer_list
  fi
  case "$ns" in
    '' | *[!0-9]*)
      read -r up _ < /proc/uptime
      frac=${up#*.}
      ns=$(( (${up%.*} * 100 + ${frac#0}) * 10000000 )) ;;
  esac
  t_us=$(( ns / 1000 ))
  t_ms=$(( ns / 1000000 ))
}
