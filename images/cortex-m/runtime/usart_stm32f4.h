/*
 * usart_stm32f4.h - the console on an STM32F4 USART (LAB_UART_STM32F4, set
 * by a board profile with `serial.uart: stm32f4-usart`), and the chip's
 * clock tree.
 *
 * Included once, by uart.c, in place of the CMSDK driver. The same code runs
 * in QEMU and on the real chip:
 *   - QEMU 10's STM32F405 models the USARTs (stm32f2xx-usart: SR, DR, BRR,
 *     CR1 with TXE, RXNE, UE, TE, RE). Its RCC (stm32-rcc) implements only
 *     the enable and reset registers; the others read back what was
 *     written and are 0 at reset, so HSIRDY and PLLRDY never rise. The
 *     flash interface and the GPIO ports are unimplemented devices that
 *     ignore writes and read as 0. Its SYSCLK is a fixed 168 MHz.
 *   - The real chip starts on its 16 MHz HSI with every peripheral clock
 *     off and every pin an input. rt_clock_init moves it to 168 MHz (so
 *     that LAB_CPU_HZ holds in both worlds), rt_uart_init enables the
 *     USART's and its GPIO port's clocks and gives the pins to the USART.
 * An RCC whose HSIRDY reads 0 (the HSI runs from reset on a real chip) is
 * QEMU's: there is no clock tree to set up, and waiting on its ready bits
 * would never end.
 */
#ifndef LAB_USART_STM32F4_H
#define LAB_USART_STM32F4_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* RCC (reset and clock control). */
#define RCC_BASE 0x40023800u
#define RCC_CR REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x04u)
#define RCC_CFGR REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR REG32(RCC_BASE + 0x44u)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_PLL 2u
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (2u << 2)
/* APB1 (low speed) = HCLK / 4, APB2 (high speed) = HCLK / 2. */
#define RCC_CFGR_PPRE1_DIV4 (5u << 10)
#define RCC_CFGR_PPRE2_DIV2 (4u << 13)

/* Flash interface: wait states, prefetch and caches. */
#define FLASH_ACR REG32(0x40023C00u)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIO ports A, B, ... every 0x400 bytes. */
#define GPIO_BASE(port) (0x40020000u + 0x400u * (uint32_t)(port))
#define GPIO_MODER(port) REG32(GPIO_BASE(port) + 0x00u)
#define GPIO_PUPDR(port) REG32(GPIO_BASE(port) + 0x0Cu)
#define GPIO_AFR(port, pin) REG32(GPIO_BASE(port) + 0x20u + 4u * ((pin) / 8u))
#define GPIO_MODE_AF 2u
#define GPIO_PULL_UP 1u

/* The USART. */
#define USART_SR REG32(LAB_UART_BASE + 0x00u)
#define USART_DR REG32(LAB_UART_BASE + 0x04u)
#define USART_BRR REG32(LAB_UART_BASE + 0x08u)
#define USART_CR1 REG32(LAB_UART_BASE + 0x0Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* The chip's clocks after rt_clock_init: the PLL at 168 MHz from the HSI,
 * or the HSI itself when the board runs at 16 MHz. */
#define HSI_HZ 16000000u
#if LAB_CPU_HZ == 168000000
#define STM32_PLL 1
#define APB1_HZ (LAB_CPU_HZ / 4u)
#define APB2_HZ (LAB_CPU_HZ / 2u)
#elif LAB_CPU_HZ == 16000000
#define STM32_PLL 0
#define APB1_HZ HSI_HZ
#define APB2_HZ HSI_HZ
#else
#error "LAB_UART_STM32F4: clock_hz must be 168000000 (PLL from the HSI) or 16000000 (the HSI)"
#endif

/* USART1 and USART6 sit on APB2, the others on APB1: the bus clock, the
 * enable register and the enable bit of the console's USART. */
#if LAB_UART_BASE == 0x40011000
#define USART_PCLK_HZ APB2_HZ
#define USART_ENR RCC_APB2ENR
#define USART_EN_BIT (1u << 4)
#elif LAB_UART_BASE == 0x40011400
#define USART_PCLK_HZ APB2_HZ
#define USART_ENR RCC_APB2ENR
#define USART_EN_BIT (1u << 5)
#elif LAB_UART_BASE == 0x40004400 || LAB_UART_BASE == 0x40004800 ||                         \
    LAB_UART_BASE == 0x40004C00 || LAB_UART_BASE == 0x40005000
#define USART_PCLK_HZ APB1_HZ
#define USART_ENR RCC_APB1ENR
/* USART2, USART3, UART4, UART5: bits 17 to 20, 0x400 bytes apart. */
#define USART_EN_BIT (1u << (17u + (LAB_UART_BASE - 0x40004400u) / 0x400u))
#else
#error "LAB_UART_STM32F4: LAB_UART_BASE is not an STM32F4 USART"
#endif

#ifndef LAB_UART_BAUD
#error "LAB_UART_STM32F4 needs LAB_UART_BAUD"
#endif

/* Switches SYSCLK to the PLL at 168 MHz: five flash wait states first (the
 * limit for 150-168 MHz at 2.7-3.6 V), then PLL = HSI / 16 * 336 / 2 (and
 * 48 MHz on PLLQ = 7 for USB), then the bus dividers and the switch. The
 * regulator's scale 1, needed at 168 MHz, is the F405's reset state. Runs
 * before .data and .bss exist, so it uses registers and its stack only.
 * Does nothing where HSIRDY reads 0 (QEMU) or the PLL already runs. */
void rt_clock_init(void)
{
#if STM32_PLL
  if (!(RCC_CR & RCC_CR_HSIRDY) || (RCC_CFGR & RCC_CFGR_SWS_MASK) == RCC_CFGR_SWS_PLL)
    return;
  FLASH_ACR = FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN | 5u;
  while ((FLASH_ACR & 0xFu) != 5u)
    ;
  RCC_PLLCFGR = (7u << 24) | (0u << 16) | (336u << 6) | 16u; /* Q, P = /2, N, M; source HSI */
  RCC_CR |= RCC_CR_PLLON;
  while (!(RCC_CR & RCC_CR_PLLRDY))
    ;
  RCC_CFGR = RCC_CFGR_PPRE2_DIV2 | RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_SW_PLL;
  while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL)
    ;
#endif
}

#ifdef LAB_UART_AF
/* Gives `pin` of `port` to alternate function LAB_UART_AF, pulled up (an
 * idle line is high, also with nothing wired to it). */
static void rt_uart_pin(uint32_t port, uint32_t pin)
{
  uint32_t shift4 = 4u * (pin % 8u), shift2 = 2u * pin;

  RCC_AHB1ENR |= 1u << port;
  (void)RCC_AHB1ENR; /* the clock is on before the port is touched */
  GPIO_AFR(port, pin) = (GPIO_AFR(port, pin) & ~(0xFu << shift4)) | ((uint32_t)LAB_UART_AF << shift4);
  GPIO_PUPDR(port) = (GPIO_PUPDR(port) & ~(3u << shift2)) | (GPIO_PULL_UP << shift2);
  GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << shift2)) | (GPIO_MODE_AF << shift2);
}
#endif

/* Clocks the USART, muxes its pins, sets the baud rate (16x oversampling:
 * BRR = PCLK / baud, rounded) and enables it, TX and RX, without
 * interrupts. Reading SR and DR afterwards tells QEMU's character backend
 * that the USART takes input now (as with the CMSDK UART). */
void rt_uart_init(void)
{
  USART_ENR |= USART_EN_BIT;
  (void)USART_ENR;
#ifdef LAB_UART_AF
  rt_uart_pin(LAB_UART_TX_PORT, LAB_UART_TX_PIN);
  rt_uart_pin(LAB_UART_RX_PORT, LAB_UART_RX_PIN);
#endif
  USART_BRR = (USART_PCLK_HZ + LAB_UART_BAUD / 2u) / LAB_UART_BAUD;
  USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
  (void)USART_SR;
  (void)USART_DR;
}

/* Waits for TXE, then writes the byte. */
void rt_putc(char c)
{
  while (!(USART_SR & USART_SR_TXE))
    ;
  USART_DR = (uint8_t)c;
}

/* Writes each byte of s. */
void rt_puts(const char *s)
{
  while (*s != '\0')
    rt_putc(*s++);
}

/* Waits for TC: the shift register is empty. */
void rt_uart_flush(void)
{
  while (!(USART_SR & USART_SR_TC))
    ;
}

/* Waits for RXNE, then reads the byte (which clears RXNE). */
int rt_getc(void)
{
  while (!(USART_SR & USART_SR_RXNE))
    ;
  return (int)(USART_DR & 0xFFu);
}

#endif
