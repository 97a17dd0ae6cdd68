# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x04208033  # OP with funct7 = 2
    EXPECT_PANIC_TAIL
TEST_END
