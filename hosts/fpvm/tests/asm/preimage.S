# fpvm-only
# the preimage syscalls. The harness's oracle holds the conformance
# request (input = the sentence below): local key INPUT_HASH -> keccak256(input),
# and the input under its keccak key. Reads 5 bytes at a time so that reads stop
# at 32-byte leaf boundaries, then commits the input's keccak key as output.
.include "macros.inc"
TEST_BEGIN
    # set the local key INPUT_HASH (type 1, ident 2)
    li gp, 2
    la a0, lkey
    li a7, 0x100
    ecall
    bnez a0, fail
    # read its stream: 8-byte length (32) + the hash
    la s0, hbuf
    li s1, 0
1:  add a0, s0, s1
    li a1, 32
    li a7, 0x101
    ecall
    add s1, s1, a0
    bnez a0, 1b
    li gp, 3
    li x7, 40
    bne s1, x7, fail
    li gp, 4
    lw x5, 4(s0)
    li x7, 0x20000000       # big-endian 32 read as a little-endian word
    bne x5, x7, fail
    # keccak key = hash with byte 0 = 2
    la s2, keybuf
    .irp o, 0,4,8,12,16,20,24,28
    lw x5, (8+\o)(s0)
    sw x5, \o(s2)
    .endr
    li x5, 2
    sb x5, 0(s2)
    mv a0, s2
    li a7, 0x100
    ecall
    # read the input stream 5 bytes at a time
    la s0, buf
    li s1, 0
    li s3, 0
2:  add a0, s0, s1
    li a1, 5
    li a7, 0x101
    ecall
    addi s3, s3, 1
    add s1, s1, a0
    bnez a0, 2b
    li gp, 5
    li x7, 75
    bne s1, x7, fail
    # 75 bytes over leaves of 32 with reads of <= 5: 7 + 7 + 3 non-empty reads + 1 empty
    li gp, 6
    li x7, 18
    bne s3, x7, fail
    # compare with the expected stream
    li gp, 7
    la x5, buf
    la x6, expect
    li x28, 75
3:  lbu x9, 0(x5)
    lbu x10, 0(x6)
    bne x9, x10, fail
    addi x5, x5, 1
    addi x6, x6, 1
    addi x28, x28, -1
    bnez x28, 3b
    # reading past the end returns 0 and writes nothing
    li gp, 8
    mv a0, s0
    li a1, 32
    li a7, 0x101
    ecall
    bnez a0, fail
    # a read of 0 bytes is a no-op
    li gp, 9
    mv a0, s2
    li a7, 0x100
    ecall
    mv a0, s0
    li a1, 0
    li a7, 0x101
    ecall
    bnez a0, fail
    # commit the input's keccak key as the output
    li gp, 10
    mv a0, s2
    li a7, 0x102
    ecall
    bnez a0, fail

    .data
    .balign 32
lkey:
    .byte 1
    .fill 30, 1, 0
    .byte 2
    .balign 32
keybuf: .space 32
hbuf:   .space 64
buf:    .space 96
expect:
    .byte 0, 0, 0, 0, 0, 0, 0, 67
    .ascii "The quick brown fox jumps over the lazy dog, twice over: 0123456789"
    .text
TEST_END
