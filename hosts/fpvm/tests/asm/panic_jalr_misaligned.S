# expect: panic 2
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, 1f
    addi x5, x5, 2
    jalr x1, 0(x5)
1:  nop
    EXPECT_PANIC_TAIL
TEST_END
