# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x6010d093  # srli x1, x1, 1 with funct7 = 0x30
    EXPECT_PANIC_TAIL
TEST_END
