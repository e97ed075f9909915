/* Reset code for QEMU's xtensa sim machine (call0 ABI, lx106): the reset vector jumps to
   _start, which sets the stack pointer and calls xt_main (harness.cpp); when it returns,
   semihosting call 1 (exit) with its result as the exit status. */
  .section .entry, "ax"
  .global _reset
_reset:
  j _start

  .text
  .literal_position
  .literal .Lstack, __stack
  .literal .Lmain, xt_main
  .global _start
  .align 4
_start:
  l32r a1, .Lstack
  l32r a0, .Lmain
  callx0 a0
  mov a3, a2
  movi a2, 1
  simcall
1:
  j 1b
