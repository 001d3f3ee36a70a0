module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  modulePathIgnorePatterns: ['<rootDir>/openbis_jupyterlab/labextension', '<rootDir>/lib'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { types: ['jest'], isolatedModules: true } }] }
};
