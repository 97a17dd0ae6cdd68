# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x0000100f  # fence.i (Zifencei is not in rv32im)
    EXPECT_PANIC_TAIL
TEST_END
