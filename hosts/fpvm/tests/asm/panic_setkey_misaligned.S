# expect: panic 8
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la a0, testdata
    addi a0, a0, 4
    li a7, 0x100
    ecall
    EXPECT_PANIC_TAIL
TEST_END
