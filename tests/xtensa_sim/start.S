/* Reset code for QEMU's xtensa sim machine (call0 ABI, lx106): the reset vector jumps to
   _start, which points VECBASE at the exception vectors below, sets the stack pointer and
   calls xt_main (harness.cpp); when it returns, semihosting call 1 (exit) with its result
   as the exit status. Every exception (a crash: load from a bad address, ...) exits with
   status 139, so a crash ends the boot at once instead of looping through unmapped vectors. */
  .section .entry, "ax"
  .global _reset
_reset:
  j _start

  .text
  .literal_position
  .literal .Lstack, __stack
  .literal .Lmain, xt_main
  .literal .Lvectors, xt_vectors
  .global _start
  .align 4
_start:
  l32r a2, .Lvectors
  wsr a2, vecbase
  rsync
  l32r a1, .Lstack
  l32r a0, .Lmain
  callx0 a0
  mov a3, a2
  movi a2, 1
  simcall
1:
  j 1b

/* VECBASE + 0x10 debug, 0x20 NMI, 0x30 kernel, 0x50 user, 0x70 double exception (lx106):
   a stub at every 16 B step of the first 256 B */
  .section .vectors, "ax"
  .align 1024
  .global xt_vectors
xt_vectors:
  .rept 16
  .align 16
  movi a2, 1
  movi a3, 139
  simcall
  .endr
